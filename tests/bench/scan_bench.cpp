// Scanning throughput at 100 / 1k / 10k response-body signatures, and ruleset compile time
// with up to 1M host entries. Run with `make bench`; never part of the test suite.
#include <benchmark/benchmark.h>

#include <chrono>
#include <random>

#include "inspect/ruleset.hpp"

namespace {

using namespace vigil;

// Signatures shaped like real ones: a distinctive literal core with variable parts around it.
rules::RuleData signatures(int n) {
    std::mt19937 rng(7);
    rules::RuleData d;
    for (int i = 0; i < n; ++i) {
        std::string core;
        for (int k = 0; k < 8; ++k) core += static_cast<char>('a' + rng() % 26);
        std::string pattern;
        switch (i % 4) {
            case 0: pattern = core + "[0-9]{2,6}"; break;
            case 1: pattern = "(?i)" + core + "\\s*=\\s*['\"]"; break;
            case 2: pattern = core + ".{0,20}" + std::to_string(i); break;
            default: pattern = "\\b" + core + "\\b"; break;
        }
        d.signatures.push_back({"sig" + std::to_string(i), "response_body", pattern, "block", "high", "", "", true});
    }
    return d;
}

std::string random_text(size_t n) {
    std::mt19937 rng(11);
    std::string s(n, ' ');
    for (auto& c : s) c = static_cast<char>(' ' + rng() % 95);
    return s;
}

// Scans `body` as the gateway does, 64 KiB at a time, once per iteration; nothing may match.
void scan_in_chunks(benchmark::State& state, const inspect::RuleSet& rs, const std::string& body) {
    for (auto _ : state) {
        auto scanner = rs.scan_body(inspect::Target::response_body, "");
        for (size_t off = 0; off < body.size(); off += 64 * 1024)
            scanner->feed(std::string_view(body).substr(off, 64 * 1024));
        if (scanner->verdict().action != inspect::Action::allow) state.SkipWithError("unexpected match");
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(body.size()));
}

void BM_ScanResponseBody(benchmark::State& state) {
    auto rs = inspect::RuleSet::compile(signatures(static_cast<int>(state.range(0))), {});
    static const std::string text = random_text(16u << 20);
    scan_in_chunks(state, *rs, text);
}
BENCHMARK(BM_ScanResponseBody)->Arg(100)->Arg(1000)->Arg(10000)->Unit(benchmark::kMillisecond);

// What `make bench-compare` has Vigil scan: the 1,000 signatures above plus the default ruleset's
// response-body signatures (whose literals include a 5-byte one, "b374k", and short ones), over
// random bytes (nginx serves files from os.urandom).
void BM_ScanCompareMix(benchmark::State& state) {
    auto data = signatures(1000);
    const char* defaults[] = {
        R"(X5O\!P\%\@AP\[4\\PZX54\(P\^\)7CC\)7\}\$EICAR-STANDARD-ANTIVIRUS-TEST-FILE\!\$H\+H\*)",
        R"((?i)powershell(\.exe)?\s+(-nop\s+|-w\s+hidden\s+|-noni\s+|-exec\s+bypass\s+)*-e(nc|ncodedcommand)?\s+[A-Za-z0-9+/=]{40,})",
        R"((?i)(c99shell|r57shell|b374k|wso shell))"};
    for (const char* pattern : defaults)
        data.signatures.push_back({"default" + std::to_string(data.signatures.size()), "response_body", pattern, "block",
                                   "high", "", "", true});
    auto rs = inspect::RuleSet::compile(data, {});
    static const std::string bytes = [] {
        std::mt19937 rng(13);
        std::string s(16u << 20, '\0');
        for (auto& c : s) c = static_cast<char>(rng());
        return s;
    }();
    scan_in_chunks(state, *rs, bytes);
}
BENCHMARK(BM_ScanCompareMix)->Unit(benchmark::kMillisecond);

// The keep-alive scenario's cost: one scanner per response of a few bytes to a few KiB, where
// a scan's fixed start-up, not its bytes, is what a request pays.
void BM_ScanSmallBody(benchmark::State& state) {
    auto rs = inspect::RuleSet::compile(signatures(1000), {});
    const std::string body = random_text(static_cast<size_t>(state.range(0)));
    for (auto _ : state) {
        auto scanner = rs->scan_body(inspect::Target::response_body, "");
        scanner->feed(body);
        if (scanner->verdict().action != inspect::Action::allow) state.SkipWithError("unexpected match");
    }
}
BENCHMARK(BM_ScanSmallBody)->Arg(0)->Arg(64)->Arg(1024)->Arg(16384)->Unit(benchmark::kMicrosecond);

void BM_CompileSignatures(benchmark::State& state) {
    auto data = signatures(static_cast<int>(state.range(0)));
    for (auto _ : state) benchmark::DoNotOptimize(inspect::RuleSet::compile(data, {}));
}
BENCHMARK(BM_CompileSignatures)->Arg(10000)->Unit(benchmark::kMillisecond);

void BM_CompileAndMatchHosts(benchmark::State& state) {
    rules::RuleData d;
    for (int64_t i = 0; i < state.range(0); ++i)
        d.hosts.push_back({(i % 2 ? ".h" : "h") + std::to_string(i) + ".example", "c" + std::to_string(i % 50)});
    std::shared_ptr<const inspect::RuleSet> rs;
    for (auto _ : state) rs = inspect::RuleSet::compile(d, {});
    state.counters["lookups_per_s"] = benchmark::Counter(0);
    auto t0 = std::chrono::steady_clock::now();
    size_t found = 0;
    for (int i = 0; i < 1000000; ++i) found += !rs->host_category("www.h" + std::to_string(i * 7 % 1000000) + ".example").empty();
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    state.counters["lookups_per_s"] = 1e6 / secs;
    benchmark::DoNotOptimize(found);
}
BENCHMARK(BM_CompileAndMatchHosts)->Arg(1000000)->Unit(benchmark::kMillisecond)->Iterations(1);

}  // namespace

BENCHMARK_MAIN();

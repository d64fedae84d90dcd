// Body scanning on real text with real rule sets (issue 31): for each signature set (the Core
// Rule Set's @rx patterns, 1k and 10k threat markers) and each corpus (JavaScript, HTML, JSON,
// CSS, and random bytes as the control), the MB/s of Vigil's engine (RuleSet::scan_body, one
// scanner per document, 64 KiB chunks, as the gateway feeds it), of one plain RE2::Set, and of
// Hyperscan (block mode, the same patterns), on one core. Also the share of documents that
// match, so the sets are known to be realistic (well under a fifth should).
//
//   vigil_scan_real_bench CORPUS_DIR [seconds per measurement, default 1.5] [SET...]
//
// Signatures are `monitor`, so every byte of every document is scanned (a block would stop the
// scan at the first match and flatter the engine); the most frequent matches are listed after
// the table.
//
// CORPUS_DIR is what tests/bench/corpus.py builds (`make bench` does both). Not part of CI.
#include <hs/hs.h>

#include <re2/re2.h>
#include <re2/set.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <algorithm>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "inspect/ruleset.hpp"

namespace {

using namespace vigil;
using Clock = std::chrono::steady_clock;
constexpr size_t kChunk = 64 * 1024;

struct Corpus {
    std::string name, bytes;
    std::vector<std::string_view> docs;
};

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path + " (run tests/bench/corpus.py first)");
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

Corpus load_corpus(const std::string& dir, const std::string& kind) {
    Corpus c{kind, slurp(dir + "/corpus/" + kind + ".bin"), {}};
    std::istringstream idx(slurp(dir + "/corpus/" + kind + ".idx"));
    size_t off, len;
    while (idx >> off >> len) c.docs.push_back(std::string_view(c.bytes).substr(off, len));
    return c;
}

// The control: random bytes in documents of the real corpora's median size.
Corpus random_corpus(size_t size) {
    Corpus c{"random", std::string(size, '\0'), {}};
    std::mt19937 rng(5);
    for (auto& ch : c.bytes) ch = static_cast<char>(rng());
    for (size_t off = 0; off < size; off += 48 * 1024)
        c.docs.push_back(std::string_view(c.bytes).substr(off, std::min<size_t>(48 * 1024, size - off)));
    return c;
}

std::vector<std::string> load_set(const std::string& dir, const std::string& name, size_t& rejected) {
    std::istringstream in(slurp(dir + "/sets/" + name + ".txt"));
    std::vector<std::string> out;
    RE2::Options o;
    o.set_log_errors(false);
    o.set_encoding(RE2::Options::EncodingLatin1);
    rejected = 0;
    for (std::string line; std::getline(in, line);) {
        if (line.empty()) continue;
        if (RE2(line, o).ok()) out.push_back(line);
        else ++rejected;
    }
    return out;
}

struct Rate {
    double mb_s = 0;
    double matched_share = 0;  // documents with a match
    bool partial = false;      // stopped before one pass over the corpus
    std::string note;
};

// Runs `scan_doc` over the documents for about `seconds` (at least one whole pass unless it is
// too slow to finish one in 4x the time), and the bytes/s.
Rate measure(const Corpus& c, double seconds, const std::function<bool(std::string_view)>& scan_doc) {
    Rate r;
    size_t bytes = 0, docs = 0, matched = 0, passes = 0;
    const auto start = Clock::now();
    auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
    for (;;) {
        for (std::string_view d : c.docs) {
            const bool m = scan_doc(d);
            bytes += d.size();
            if (passes == 0) matched += m, ++docs;
            if (passes == 0 && elapsed() > 4 * seconds) {
                r.partial = true;
                break;
            }
        }
        ++passes;
        if (r.partial || elapsed() >= seconds) break;
    }
    r.mb_s = static_cast<double>(bytes) / 1e6 / elapsed();
    r.matched_share = docs ? static_cast<double>(matched) / static_cast<double>(docs) : 0;
    return r;
}

// `seen`, when given, counts the documents each signature matched in the first pass.
Rate vigil_rate(const inspect::RuleSet& rs, const Corpus& c, double seconds, std::map<std::string, int>* seen) {
    bool first_pass = seen != nullptr;
    size_t docs = 0;
    Rate r = measure(c, seconds, [&](std::string_view doc) {
        auto scanner = rs.scan_body(inspect::Target::response_body, "");
        for (size_t off = 0; off < doc.size(); off += kChunk) scanner->feed(doc.substr(off, kChunk));
        const auto& v = scanner->verdict();
        if (first_pass) {
            for (const auto& m : v.monitored) ++(*seen)[m];
            first_pass = ++docs < c.docs.size();
        }
        return !v.monitored.empty() || v.action != inspect::Action::allow;
    });
    return r;
}

Rate re2_set_rate(const RE2::Set& set, const Corpus& c, double seconds) {
    size_t errors = 0;
    std::vector<int> hits;
    Rate r = measure(c, seconds, [&](std::string_view doc) {
        bool any = false;
        for (size_t off = 0; off < doc.size(); off += kChunk) {
            RE2::Set::ErrorInfo info{};
            const std::string_view part = doc.substr(off, kChunk);
            any |= set.Match(re2::StringPiece(part.data(), part.size()), &hits, &info);
            errors += info.kind != RE2::Set::kNoError;
        }
        return any;
    });
    if (errors) r.note = std::to_string(errors) + " chunks failed (DFA out of memory)";
    return r;
}

struct Hyperscan {
    hs_database_t* db = nullptr;
    hs_scratch_t* scratch = nullptr;
    size_t rejected = 0;
    ~Hyperscan() {
        hs_free_scratch(scratch);
        hs_free_database(db);
    }
};

// The same patterns in Hyperscan's block mode, each reported once per scan; patterns it
// cannot compile are left out (counted).
void hs_build(Hyperscan& h, const std::vector<std::string>& patterns) {
    std::vector<const char*> exprs;
    std::vector<unsigned> flags, ids;
    for (size_t i = 0; i < patterns.size(); ++i) {
        hs_database_t* one = nullptr;
        hs_compile_error_t* err = nullptr;
        if (hs_compile(patterns[i].c_str(), HS_FLAG_SINGLEMATCH | HS_FLAG_ALLOWEMPTY, HS_MODE_BLOCK, nullptr, &one,
                       &err) != HS_SUCCESS) {
            hs_free_compile_error(err);
            ++h.rejected;
            continue;
        }
        hs_free_database(one);
        exprs.push_back(patterns[i].c_str());
        flags.push_back(HS_FLAG_SINGLEMATCH | HS_FLAG_ALLOWEMPTY);
        ids.push_back(static_cast<unsigned>(i));
    }
    hs_compile_error_t* err = nullptr;
    if (hs_compile_multi(exprs.data(), flags.data(), ids.data(), static_cast<unsigned>(exprs.size()), HS_MODE_BLOCK,
                         nullptr, &h.db, &err) != HS_SUCCESS) {
        std::string what = err ? err->message : "?";
        hs_free_compile_error(err);
        throw std::runtime_error("hyperscan: " + what);
    }
    hs_alloc_scratch(h.db, &h.scratch);
}

Rate hs_rate(const Hyperscan& h, const Corpus& c, double seconds) {
    return measure(c, seconds, [&](std::string_view doc) {
        bool any = false;
        auto on_match = [](unsigned, unsigned long long, unsigned long long, unsigned, void* ctx) -> int {
            *static_cast<bool*>(ctx) = true;
            return 0;
        };
        for (size_t off = 0; off < doc.size(); off += kChunk) {
            const std::string_view part = doc.substr(off, kChunk);
            hs_scan(h.db, part.data(), static_cast<unsigned>(part.size()), 0, h.scratch, on_match, &any);
        }
        return any;
    });
}

std::string cell(const Rate& r) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.1f%s", r.mb_s, r.partial ? "*" : "");
    return buf;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::cerr << "usage: vigil_scan_real_bench CORPUS_DIR [seconds]\n";
        return 2;
    }
    const std::string dir = argv[1];
    const double seconds = argc > 2 ? std::stod(argv[2]) : 1.5;
    std::vector<std::string> sets;
    for (int i = 3; i < argc; ++i) sets.push_back(argv[i]);
    if (sets.empty()) sets = {"crs", "real1k", "real10k"};
    std::vector<Corpus> corpora;
    for (const char* kind : {"js", "html", "json", "css"}) corpora.push_back(load_corpus(dir, kind));
    corpora.push_back(random_corpus(16u << 20));
    std::cout << "| set | corpus | Vigil MB/s | RE2::Set MB/s | Hyperscan MB/s | Vigil / Hyperscan | documents matched |\n"
                 "|---|---|---:|---:|---:|---:|---:|\n";
    std::ostringstream notes;
    for (const std::string& set_name : sets) {
        size_t rejected = 0;
        const auto patterns = load_set(dir, set_name, rejected);
        rules::RuleData data;
        for (size_t i = 0; i < patterns.size(); ++i)
            data.signatures.push_back({std::to_string(i), "response_body", patterns[i], "monitor", "high", "", "", true});
        auto t0 = Clock::now();
        auto rs = inspect::RuleSet::compile(data, {});
        const double compile_s = std::chrono::duration<double>(Clock::now() - t0).count();
        RE2::Options o;
        o.set_log_errors(false);
        o.set_encoding(RE2::Options::EncodingLatin1);
        o.set_max_mem(256 << 20);
        RE2::Set set(o, RE2::UNANCHORED);
        for (const auto& p : patterns) set.Add(p, nullptr);
        const bool set_ok = set.Compile();
        Hyperscan hs;
        hs_build(hs, patterns);
        notes << "- " << set_name << ": " << patterns.size() << " patterns RE2 accepts (" << rejected
              << " it rejects left out); Vigil compiles them in " << compile_s << " s; Hyperscan rejects "
              << hs.rejected << " of them; Vigil runs " << rs->re2_only_signatures().size()
              << " as RE2 alone" << (set_ok ? "" : "; the plain RE2::Set did not compile") << "\n";
        std::map<std::string, int> seen;  // signature -> documents it matched
        for (const auto& c : corpora) {
            // Vigil and Hyperscan alternate, best of three each: two shared cores are noisy.
            Rate v, h;
            for (int round = 0; round < 3; ++round) {
                const Rate vr = vigil_rate(*rs, c, seconds, round == 0 ? &seen : nullptr);
                const Rate hr = hs_rate(hs, c, seconds);
                if (vr.mb_s > v.mb_s) v = vr;
                if (hr.mb_s > h.mb_s) h = hr;
            }
            const Rate s = set_ok ? re2_set_rate(set, c, seconds) : Rate{};
            char ratio[32], share[32];
            std::snprintf(ratio, sizeof ratio, "%.2f", h.mb_s > 0 ? v.mb_s / h.mb_s : 0);
            std::snprintf(share, sizeof share, "%.1f%%", 100 * v.matched_share);
            std::cout << "| " << set_name << " | " << c.name << " | " << cell(v) << " | " << cell(s) << " | " << cell(h)
                      << " | " << ratio << " | " << share << " |" << std::endl;
            if (!s.note.empty()) notes << "- " << set_name << " × " << c.name << ": RE2::Set " << s.note << "\n";
        }
        std::vector<std::pair<int, std::string>> top;
        for (const auto& [id, n] : seen) top.emplace_back(n, id);
        std::sort(top.rbegin(), top.rend());
        notes << "  most frequent matches (documents, all corpora):";
        for (size_t i = 0; i < std::min<size_t>(top.size(), 5); ++i)
            notes << " " << top[i].first << "× `" << patterns[std::stoul(top[i].second)].substr(0, 60) << "`";
        notes << "\n";
    }
    std::cout << "\n* stopped before one pass over the corpus (too slow)\n" << notes.str();
    return 0;
}

// vigil-rules: what signatures cost to scan, measured on a built-in sample of real text, and
// the admission of a write that would make scanning slower than a floor (issue 31).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <set>

#include "inspect/compiled_cache.hpp"
#include "inspect/ruleset.hpp"
#include "rules/cli_args.hpp"

namespace vigil::rules::cli {

extern const unsigned char kScanSample[];
extern const size_t kScanSampleSize;

namespace {

using Clock = std::chrono::steady_clock;

std::string_view sample() { return {reinterpret_cast<const char*>(kScanSample), kScanSampleSize}; }

inspect::Target target_of(const std::string& name) {
    const auto& names = signature_targets();
    return static_cast<inspect::Target>(std::find(names.begin(), names.end(), name) - names.begin());
}

// MB/s of `target`'s signatures over the sample, 64 KiB at a time as the gateway feeds bodies,
// for at least `min_seconds` (one pass at least). Signatures are measured as monitors: every
// byte is scanned.
double rate(const inspect::RuleSet& rs, inspect::Target target, double min_seconds = 0.1) {
    const std::string_view text = sample();
    size_t bytes = 0;
    const auto start = Clock::now();
    double secs = 0;
    do {
        auto scanner = rs.scan_body(target, "");
        for (size_t off = 0; off < text.size(); off += 64 * 1024) scanner->feed(text.substr(off, 64 * 1024));
        bytes += text.size();
        secs = std::chrono::duration<double>(Clock::now() - start).count();
    } while (secs < min_seconds);
    return static_cast<double>(bytes) / 1e6 / secs;
}

// The signatures of `d` as monitors (a block would stop the scan at the first match and make a
// set look faster than it is).
RuleData as_monitors(std::vector<Signature> sigs) {
    RuleData d;
    for (auto& s : sigs) {
        s.action = "monitor";
        s.validator.clear();
        if (s.enabled) d.signatures.push_back(std::move(s));
    }
    return d;
}

std::string mbs(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, v >= 100 ? "%.0f MB/s" : "%.1f MB/s", v);
    return buf;
}

struct Alone {
    std::string name, pattern;
    double mb_s;
};

// Each of `sigs` alone, slowest first.
std::vector<Alone> alone(const std::vector<Signature>& sigs) {
    std::vector<Alone> out;
    for (const auto& s : sigs) {
        auto rs = inspect::RuleSet::compile(as_monitors({s}), {});
        out.push_back({s.name, s.pattern, rate(*rs, target_of(s.target), 0)});
    }
    std::sort(out.begin(), out.end(), [](const Alone& a, const Alone& b) { return a.mb_s < b.mb_s; });
    return out;
}

std::string signature_key(const Signature& s) { return s.target + '\n' + s.pattern + '\n' + (s.enabled ? "1" : "0"); }

}  // namespace

void check_scan_cost(RuleDb& db, const std::vector<Signature>& before, const RuleData& after, const CostOptions& opts) {
    std::set<std::string> old;
    for (const auto& s : before) old.insert(signature_key(s));
    std::map<std::string, std::vector<Signature>> by_target, fresh;
    bool changed = before.size() != after.signatures.size();
    for (const auto& s : after.signatures) {
        if (!s.enabled) continue;
        by_target[s.target].push_back(s);
        if (!old.count(signature_key(s))) fresh[s.target].push_back(s), changed = true;
    }
    if (!changed) return;  // users, hosts, policies: nothing to scan differently
    // Compiled once here, kept with the rules: the gateway loads it instead of compiling again.
    // Compiled as monitors: the compiled database is named by the patterns alone, so what is
    // stored here is what the gateway loads for the same signatures (kept with the rules if
    // the write commits).
    const inspect::RuleDbCache cache(db, true);
    inspect::InspectOptions io;
    io.compiled = &cache;
    std::string refused;
    for (const auto& [target, sigs] : by_target) {
        auto rs = inspect::RuleSet::compile(as_monitors(sigs), io);
        const double mb_s = rate(*rs, target_of(target));
        const auto& added = fresh[target];
        std::cout << "scan cost: " << sigs.size() << " " << target << " signature" << (sigs.size() == 1 ? "" : "s")
                  << " scan the built-in sample at " << mbs(mb_s) << " (floor " << mbs(opts.floor) << ")\n";
        const auto only = rs->re2_only_signatures();
        if (!only.empty())
            std::cout << "  " << only.size() << " run as RE2 alone, each a pass of its own (e.g. " << only.front() << ")\n";
        // Each new signature's own cost, slowest first: every one when there are few, else the
        // ten slowest and the spread.
        const auto slow = alone(added);
        for (size_t i = 0; i < slow.size() && (slow.size() <= 20 || i < 10); ++i)
            std::cout << "  " << slow[i].name << " alone: " << mbs(slow[i].mb_s) << "\n";
        if (slow.size() > 20)
            std::cout << "  (" << slow.size() << " new signatures measured alone; median " << mbs(slow[slow.size() / 2].mb_s)
                      << ", fastest " << mbs(slow.back().mb_s) << ")\n";
        // Only what a write adds can be refused: removing or disabling signatures always goes
        // through (it can only make scanning cheaper), even while the rest is below the floor.
        if (mb_s >= opts.floor || added.empty()) continue;
        std::string names;
        for (size_t i = 0; i < std::min<size_t>(slow.size(), 5); ++i)
            names += (i ? ", " : "") + slow[i].name + " (" + mbs(slow[i].mb_s) + ": " + slow[i].pattern.substr(0, 80) + ")";
        // When none is slow alone, the cost is their number and kind, not one pattern.
        const bool none_slow = !slow.empty() && slow.front().mb_s >= 4 * opts.floor;
        refused += (refused.empty() ? "" : "; ") + target + " signatures would scan at " + mbs(mb_s) +
                   ", below the floor of " + mbs(opts.floor) + "; " +
                   (none_slow ? "no single one is slow (the " + std::to_string(sigs.size()) +
                                    " together are); the slowest alone: "
                              : "the slowest: ") +
                   names;
    }
    if (refused.empty()) return;
    if (!opts.force)
        throw RulesError(refused + ". Nothing was written: make the patterns cheaper, or give --force to write them "
                                   "anyway (--scan-floor sets the floor)");
    std::cerr << "vigil-rules: warning: " << refused << " (written anyway: --force)\n";
}

void print_scan_cost(RuleDb& db, const RuleData& data) {
    const inspect::RuleDbCache cache(db, false);
    inspect::InspectOptions io;
    io.compiled = &cache;
    std::map<std::string, std::vector<Signature>> by_target;
    for (const auto& s : data.signatures)
        if (s.enabled) by_target[s.target].push_back(s);
    for (const auto& [target, sigs] : by_target) {
        auto rs = inspect::RuleSet::compile(as_monitors(sigs), io);
        std::cout << "scan cost: " << target << " " << sigs.size() << " signature" << (sigs.size() == 1 ? "" : "s")
                  << ", " << mbs(rate(*rs, target_of(target))) << " on the built-in sample\n";
    }
}

}  // namespace vigil::rules::cli

// The signatures of one target, matched together: Hyperscan, in prefilter mode, finds where each
// signature may end (a superset of RE2's matches: it never misses one), and RE2 confirms in a
// window around each such place; RE2's answer is the one that counts (the rule language stays
// RE2's). A signature whose longest match is bounded is confirmed in that many bytes before the
// place; an unbounded one once over the buffer. Signatures Hyperscan cannot take (constructs it
// lacks, bytes above 0x7F whose case RE2 folds and Hyperscan does not) run as their own RE2,
// each with its own DFA, never as one RE2::Set whose DFA grows with their number.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <re2/re2.h>

namespace vigil::inspect {

// Compiled Hyperscan databases kept between runs (the rule database's `compiled` table):
// compiling thousands of signatures takes seconds, loading them milliseconds. Entries are named
// by a digest of the patterns, Hyperscan's version and this CPU's features, so a stale or
// foreign entry is never found; one that does not load is compiled again.
class CompiledCache {
public:
    virtual ~CompiledCache() = default;
    virtual std::optional<std::string> load(const std::string& key) const = 0;
    virtual void store(const std::string& key, const std::string& data) const = 0;  // may do nothing
};

class SignatureMatcher {
public:
    struct Options {
        int64_t re2_max_mem = 8 << 20;  // each signature's RE2
        const CompiledCache* cache = nullptr;  // used while constructing only
    };
    // Throws std::invalid_argument("INDEX: what") for a pattern RE2 rejects.
    SignatureMatcher(const std::vector<std::string>& patterns, const Options& opts);
    ~SignatureMatcher();
    SignatureMatcher(const SignatureMatcher&) = delete;
    SignatureMatcher& operator=(const SignatureMatcher&) = delete;

    // What one call learns; `hits` is cleared first.
    struct Scan {
        std::vector<int> hits;  // signatures confirmed by RE2, ascending
        bool error = false;     // the matcher failed: the content was not fully inspected
        bool out_of_time = false;  // stopped at the deadline
    };
    // What the caller adds to matching, by signature id: `validated` ones count only when
    // `accept(ctx, id, match)` takes the match (a validator such as Luhn); after a `stop` one,
    // nothing else matters (a block).
    using Accept = bool (*)(const void* ctx, int id, std::string_view match);
    struct Hooks {
        std::vector<bool> validated, stop;
        Accept accept = nullptr;
        const void* ctx = nullptr;
    };
    // Matches in `buffer`, of which the first `seen` bytes were scanned by an earlier call (a
    // match must end after them to be new). Signatures `known` to have matched already (earlier
    // in the same body) are not confirmed again. Stops at `deadline` when one is set.
    void scan(std::string_view buffer, size_t seen, Scan& out, const Hooks* hooks = nullptr,
              const std::vector<bool>* known = nullptr, std::chrono::steady_clock::time_point deadline = {}) const;

    size_t size() const { return res_.size(); }
    // How many signatures run through Hyperscan, and how many as RE2 alone (for stats and the
    // admission report).
    size_t prefiltered() const { return res_.size() - re2_only_.size(); }
    const std::vector<int>& re2_only() const { return re2_only_; }
    const RE2& re2(int id) const { return *res_[static_cast<size_t>(id)]; }
    unsigned max_width(int id) const { return width_[static_cast<size_t>(id)]; }

    struct Database;  // Hyperscan's, with its scratch space per thread

private:
    std::vector<std::unique_ptr<RE2>> res_;  // by id
    std::vector<unsigned> width_;            // longest match in bytes; UINT_MAX: unbounded
    std::vector<int> re2_only_;
    std::unique_ptr<Database> db_;
    void compile(const std::vector<std::string>& patterns, std::vector<int> prefiltered);
    bool load(const std::string& data);
    std::string save() const;
};

}  // namespace vigil::inspect

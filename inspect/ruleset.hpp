// An immutable, compiled ruleset: host and URL categorisation, policies and RE2 signatures,
// applied to one transaction. Built once off the workers, shared by all of them.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "inspect/decoder.hpp"
#include "inspect/verdict.hpp"
#include "rules/model.hpp"

namespace vigil::inspect {

class CompiledCache;  // signature_matcher.hpp

struct InspectOptions {
    int64_t re2_max_mem = 256 << 20;  // RE2 memory budget of each signature set
    size_t scan_limit = 32u << 20;    // decoded body bytes scanned; beyond: `oversize`
    bool oversize_block = false;      // inspect.oversize = block|allow
    bool error_block = true;          // matcher errors (RE2 out of memory) block
    size_t overlap = 4096;            // longest match guaranteed across chunk boundaries
    // Time one body may spend being decoded and scanned; past it the body is unscanned and
    // follows error_block (inspect.scan_budget_ms). Zero: no limit.
    std::chrono::milliseconds scan_budget{2000};
    // Compiled signature databases from earlier runs (signature_matcher.hpp); used by compile()
    // only, never kept.
    const CompiledCache* compiled = nullptr;
    DecodeLimits decode;
};

// Who and what a transaction is about.
struct Subject {
    std::string host;  // normalised host name or IP literal
    std::string url;   // full URL, e.g. "https://host/path?q"
    std::string user;
    std::vector<std::string> groups;
    std::string client_ip;
};

// Header fields as views into the message being checked (valid for the call).
using Headers = std::vector<std::pair<std::string_view, std::string_view>>;

enum class Target { url = 0, request_header, response_header, request_body, response_body };

class RuleSet;

// How a signature pass ended: all of it, the matcher failed (a verdict says so), or the scan
// budget ran out before the end.
enum class MatchStatus { done, error, out_of_time };

// How a body scan ended, for counters and decisions; scan_result() names it for the audit log.
enum class ScanOutcome { clean, matched, unscanned_oversize, unscanned_encoding, unscanned_budget, error };
const char* scan_outcome_name(ScanOutcome o);  // "clean", "matched", "unscanned-oversize", ...

// Streams one body through the signatures of its target, chunk by chunk, keeping the last
// `overlap` decoded bytes so a match split across chunks is still found.
class BodyScanner {
public:
    BodyScanner(std::shared_ptr<const RuleSet> rules, Target target, std::string_view content_encoding);
    ~BodyScanner();
    // Feeds the next bytes as they are on the wire. Returns the verdict so far.
    const Verdict& feed(std::string_view wire_bytes);
    const Verdict& verdict() const { return verdict_; }
    ScanOutcome outcome() const { return outcome_; }
    bool unscanned() const {
        return outcome_ == ScanOutcome::unscanned_oversize || outcome_ == ScanOutcome::unscanned_encoding ||
               outcome_ == ScanOutcome::unscanned_budget;
    }
    // "clean", "matched", "unscanned-oversize", "unscanned-encoding", "unscanned-budget", "error"
    // (the audit record's words)
    std::string scan_result() const { return scan_outcome_name(outcome_); }
    size_t scanned_bytes() const { return scanned_; }

private:
    void stop_unscanned(ScanOutcome outcome, const std::string& reason);
    void out_of_budget();
    std::shared_ptr<const RuleSet> rules_;
    Target target_;
    DecodeChain decoder_;
    std::string tail_, decoded_;
    std::vector<bool> known_;  // signatures that matched earlier in this body
    size_t scanned_ = 0;
    std::chrono::steady_clock::duration spent_{};  // decoding and matching so far
    bool stopped_ = false;
    Verdict verdict_;
    ScanOutcome outcome_ = ScanOutcome::clean;
};

class RuleSet : public std::enable_shared_from_this<RuleSet> {
public:
    // Compiles every pattern; throws rules::RulesError naming the rule on any failure.
    static std::shared_ptr<const RuleSet> compile(const rules::RuleData& data, const InspectOptions& opts);
    static std::shared_ptr<const RuleSet> empty(const InspectOptions& opts = {});
    ~RuleSet();

    int64_t version() const { return version_; }
    size_t host_count() const { return host_count_; }
    size_t signature_count() const;
    // The signatures that run as RE2 alone over every buffer (Hyperscan cannot take them), by
    // name: each costs a pass of its own (signature_matcher.hpp).
    std::vector<std::string> re2_only_signatures() const;
    const InspectOptions& options() const { return opts_; }

    // Proxy users: the user's groups when the password is right, nothing otherwise. Slow on
    // purpose (PBKDF2): the gateway calls it off its worker threads.
    std::optional<std::vector<std::string>> authenticate(const std::string& user, const std::string& password) const;
    std::vector<std::string> local_groups(const std::string& user) const;  // UserStore::groups_of

    // The category of the most specific host entry matching `host` ("" if none).
    std::string host_category(std::string_view host) const;

    // CONNECT, before any decryption: policy on the host's category and the client.
    Verdict check_connect(const Subject& s) const;
    // URL and request headers: host and URL categories, policy, url and request_header signatures.
    Verdict check_request(const Subject& s, const Headers& headers) const;
    Verdict check_response_headers(const Subject& s, const Headers& headers) const;
    std::unique_ptr<BodyScanner> scan_body(Target target, std::string_view content_encoding) const;

    struct Impl;

private:
    friend class BodyScanner;
    RuleSet() = default;
    // Signatures of `target` on `text`, of which the first `seen` bytes were matched before;
    // `known` (by signature, grown as needed): those that matched earlier in the same body.
    MatchStatus match_signatures(Target target, std::string_view text, Verdict& v, size_t seen = 0,
                                 std::vector<bool>* known = nullptr,
                                 std::chrono::steady_clock::time_point deadline = {}) const;
    Verdict policy_verdict(const Subject& s, const std::vector<std::string>& categories) const;

    std::unique_ptr<Impl> impl_;
    InspectOptions opts_;
    int64_t version_ = 0;
    size_t host_count_ = 0;
};

}  // namespace vigil::inspect

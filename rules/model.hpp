// The rule model: what a rule database holds, as plain values, and its native JSON form.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace vigil::rules {

// Bad input (a pattern, a file, a reference): one message naming the rule at fault.
class RulesError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct Category {
    std::string name;
    std::string description;
};

// pattern: "example.com" (exactly), "*.example.com" (names below it), ".example.com" (both).
struct HostEntry {
    std::string pattern;
    std::string category;
};

// RE2 matched against the whole URL ("https://host/path?query").
struct UrlPattern {
    std::string pattern;
    std::string category;
    std::string description;
    bool enabled = true;
};

struct Signature {
    std::string name;
    std::string target;    // url, request_header, response_header, request_body, response_body
    std::string pattern;   // RE2
    std::string action;    // block, warn, monitor
    std::string severity;  // low, medium, high, critical
    std::string validator; // "", "luhn", "ssn"
    std::string description;
    bool enabled = true;
};

struct Policy {
    std::string name;
    int priority = 100;  // lower is evaluated first
    std::string match_user, match_group, match_client_cidr, match_category;  // "" = any
    std::string action;  // allow, block, warn, monitor, bypass_inspection
    bool enabled = true;
};

// A proxy user (managed with `vigil-rules user`, not part of the JSON rule format).
struct User {
    std::string name;
    std::string password_hash;
    std::vector<std::string> groups;
    bool enabled = true;
};

struct RuleData {
    std::vector<Category> categories;
    std::vector<HostEntry> hosts;
    std::vector<UrlPattern> url_patterns;
    std::vector<Signature> signatures;
    std::vector<Policy> policies;
    std::vector<User> users;
    std::vector<std::string> groups;
    std::map<std::string, std::string> meta;  // version, updated, source
    int64_t version = 0;
};

inline const std::vector<std::string>& signature_targets() {
    static const std::vector<std::string> v = {"url", "request_header", "response_header", "request_body",
                                               "response_body"};
    return v;
}
inline const std::vector<std::string>& signature_actions() {
    static const std::vector<std::string> v = {"block", "warn", "monitor"};
    return v;
}
inline const std::vector<std::string>& policy_actions() {
    static const std::vector<std::string> v = {"allow", "block", "warn", "monitor", "bypass_inspection"};
    return v;
}
inline const std::vector<std::string>& severities() {
    static const std::vector<std::string> v = {"low", "medium", "high", "critical"};
    return v;
}
inline const std::vector<std::string>& validators() {
    static const std::vector<std::string> v = {"", "luhn", "ssn"};
    return v;
}

// Normalises and checks a host pattern; throws RulesError naming it.
std::string normalize_host_pattern(const std::string& pattern);

// Checks one rule's fields and compiles its pattern with RE2; throws RulesError naming the
// rule, the pattern and RE2's message.
void validate(const Signature& s);
void validate(const UrlPattern& u);
void validate(const Policy& p);

// Native JSON ("format": "vigil-rules/1"), deterministic: sorted, no volatile meta.
std::string to_json(const RuleData& data);
RuleData from_json(const std::string& text);  // throws RulesError

}  // namespace vigil::rules

// What changed between two rulesets, rule by rule (vigil-rules diff, and after every write).
#pragma once

#include <string>
#include <vector>

#include "rules/model.hpp"

namespace vigil::rules {

struct RuleChange {
    char op;           // '+' added, '-' removed, '~' changed
    std::string kind;  // category, host, url, signature, policy
    std::string key;   // its name or pattern
    std::string detail;  // added: the rule; changed: "field: old -> new, ..."
};

std::vector<RuleChange> diff(const RuleData& from, const RuleData& to);

// "+ policy p1: action block, category gambling" (one line, no newline).
std::string describe(const RuleChange& c);

}  // namespace vigil::rules

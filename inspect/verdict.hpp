// What inspection decides about one transaction, and why.
#pragma once

#include <string>
#include <vector>

namespace vigil::inspect {

// Ordered by precedence: a stronger action always wins when several rules match.
enum class Action { allow = 0, monitor = 1, warn = 2, block = 3 };

const char* action_name(Action a);

struct Verdict {
    Action action = Action::allow;
    bool bypass = false;       // a policy said bypass_inspection (host-level: splice, no scanning)
    std::string rule;          // the policy or signature that decided ("" = default allow)
    std::string rule_kind;     // "policy", "signature", "error", "oversize", ""
    std::string category;      // the transaction's category, if any
    std::string reason;        // plain words for pages and the audit log
    std::vector<std::string> monitored;  // signatures that matched with action monitor
    bool error = false;        // the matcher failed (e.g. RE2 out of memory) and policy decided

    // Keeps the stronger of the two verdicts (block > warn > monitor > allow); monitored
    // signatures accumulate.
    void merge(const Verdict& other);
};

}  // namespace vigil::inspect

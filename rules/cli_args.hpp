// vigil-rules' command line: the parsed arguments and the helpers every command uses
// (cli.cpp parses; cli_users.cpp has user and group; cli_versions.cpp history, diff, rollback). Internal to the tool.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "core/cli.hpp"
#include "rules/db.hpp"

namespace CLI {
class App;
}

namespace vigil::rules::cli {

// Every command and the options it takes (cli_grammar.cpp).
void declare(CLI::App& app);

// What the command line said (parsed by CLI11 as cli_grammar.cpp declares, see core/cli.hpp).
using Args = vigil::core::cli::Args;

[[noreturn]] inline void usage_error(const std::string& msg) {
    std::cerr << "vigil-rules: " << msg << " (see vigil-rules --help)\n";
    std::exit(2);
}

inline std::string actor(const Args& a) {
    if (a.has("--actor")) return a.get("--actor");
    const char* u = std::getenv("USER");
    return u ? u : "cli";
}

// The scan-cost admission of a write (cli_cost.cpp): run inside the write's transaction with the
// rules as they will be; prints what the signatures cost on the built-in sample and refuses
// (throws) when a target would scan below `floor` MB/s, unless `force`. Stores the compiled
// signature databases with the rules for the gateway.
struct CostOptions {
    double floor = 50;
    bool force = false;
};
void check_scan_cost(RuleDb& db, const std::vector<Signature>& before, const RuleData& after, const CostOptions& opts);
// What each target's signatures cost on the sample (vigil-rules test).
void print_scan_cost(RuleDb& db, const RuleData& data);

int cmd_user(RuleDb& db, const Args& a);
int cmd_group(RuleDb& db, const Args& a);
int cmd_history(const RuleDb& db, const Args& a);
int cmd_diff(const RuleDb& db, const Args& a);
int cmd_rollback(RuleDb& db, const Args& a);
// After a write: what it changed, rule by rule (the first 20), and the new version.
void print_write(const RuleDb& db, int64_t before);

}  // namespace vigil::rules::cli

// The rule reloader: watches the rule database off the workers (poll every
// rules.reload_interval, or SIGHUP) and swaps in a newly compiled ruleset; a failure keeps the
// old one serving. SIGHUP also reloads a rotated issuing CA.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "gateway/wiring.hpp"

namespace vigil::gateway {

inspect::InspectOptions inspect_options(const Config& cfg);

// The ruleset in rules.path (an empty one when none is configured); `stamp`: the database's
// state, for the reloader to compare with.
std::shared_ptr<const inspect::RuleSet> load_rules(const Config& cfg, std::string* stamp);

// What the reloader reads and replaces: the ruleset and CA snapshots, and where it reports.
struct ReloadTargets {
    const Config& cfg;
    Counters& counters;
    Snapshot<const inspect::RuleSet>& rules;
    admin::RulesHealth& health;
    Snapshot<tls::Material>& material;
    audit::Writer* audit;  // ruleset and CA swaps are audited; null: no audit log
};

class RuleReloader {
public:
    RuleReloader(ReloadTargets targets, std::string stamp);
    ~RuleReloader();
    void poke();  // SIGHUP: look now, and reload even an unchanged database and CA

private:
    void run();
    void check(bool forced);
    void check_ca();

    ReloadTargets t_;
    std::string stamp_;
    std::string bytes_;  // the files' digests at the last look
    std::thread thread_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false, poked_ = false;
};

// SIGHUP and the configuration file: read again and checked; log.level and log.format are
// applied, every other changed key is named as needing a restart (the gateway never runs
// half of a new configuration); a file that no longer loads is reported and the running
// configuration stays.
class ConfigRecheck {
public:
    ConfigRecheck(std::string path, config::Overrides overrides);
    void on_hup();

private:
    std::string path_;
    config::Overrides overrides_;
    std::map<std::string, std::string> running_;  // the keys as the gateway runs them
};

}  // namespace vigil::gateway

// rules.source: the signed ruleset bundle pulled on an interval by a thread of its own,
// verified, and written whole into rules.path; the rule reloader then loads it as any change.
// Never an older version than the database holds; a pull that fails changes nothing.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "admin/admin.hpp"

namespace vigil::gateway {

using config::Config;

class BundlePuller {
public:
    // `loaded`: called after a new bundle is written (pokes the reloader).
    BundlePuller(const Config& cfg, admin::RulesHealth& health, std::function<void()> loaded);
    ~BundlePuller();
    void poke();  // SIGHUP: pull now

private:
    void run();
    void pull();

    const Config& cfg_;
    admin::RulesHealth& health_;
    std::function<void()> loaded_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false, poked_ = false;
    std::thread thread_;
};

// The bundle's bytes from a file or an http:// URL, at most 64 MiB, within `timeout`; throws
// std::runtime_error with plain words.
std::string fetch_bundle(const std::string& source, std::chrono::seconds timeout);

}  // namespace vigil::gateway

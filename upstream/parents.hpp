// Internal: parent proxies (upstream.parents) — which parent to try for a destination, which
// are up (active health checks and failed connections), and which hosts go direct.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace vigil::upstream {

using config::Config;

struct ParentProxy {
    std::string name;  // for logs and pages: the configured name, or host:port
    std::string host;
    uint16_t port = 0;
    std::atomic<bool> up{true};
    std::atomic<int> open{0};  // connections through it from this gateway, open now
};

// Counts one open connection through a parent for as long as it lives (held beside the
// connection: by the relay, the origin connection pool, a splice).
class ParentLease {
public:
    explicit ParentLease(ParentProxy& p) : p_(p) { ++p_.open; }
    ~ParentLease() { --p_.open; }
    ParentLease(const ParentLease&) = delete;
    ParentLease& operator=(const ParentLease&) = delete;

private:
    ParentProxy& p_;
};

class Parents {
public:
    enum class Selection { round_robin, least_connections, host_hash };
    void configure(const Config& cfg);
    bool empty() const { return parents_.empty(); }
    // Whether `host` goes direct, never through a parent: it is in upstream.direct_hosts, or
    // upstream.parent_hosts is set and it is not there (exact names, or ".suffix" for the name
    // and every name below it — anchored, never a pattern).
    bool goes_direct(const std::string& host) const;
    // The parents to try for `host`, in order: the ones up, starting where the selection
    // says (least-connections: fewest open connections first, ties in turn); when none is
    // up, all of them (one may have come back since the last check).
    std::vector<ParentProxy*> candidates(const std::string& host);
    const std::vector<std::unique_ptr<ParentProxy>>& all() const { return parents_; }
    // Records a parent's state; returns whether it changed (for the log).
    static bool set_up(ParentProxy& p, bool up) { return p.up.exchange(up) != up; }

private:
    std::vector<std::unique_ptr<ParentProxy>> parents_;
    std::vector<std::string> direct_;
    std::vector<std::string> only_;  // upstream.parent_hosts
    Selection selection_ = Selection::round_robin;
    std::atomic<uint64_t> next_{0};
};

}  // namespace vigil::upstream

// The gateway's wiring: every service built once from the configuration, owned here and handed
// to the phases that use them — sessions get session::Services, the admin listener
// admin::Sources, the reloader the ruleset snapshot. Only gateway/ sees this struct.
#pragma once

#include <memory>
#include <string>

#include <boost/asio/thread_pool.hpp>

#include "admin/admin.hpp"
#include "audit/writer.hpp"
#include "cache/store.hpp"
#include "session/services.hpp"
#include "upstream/connector.hpp"

namespace vigil::gateway {

using namespace vigil::core;
using namespace vigil::io;
using config::Config;
using config::ConfigError;

// Member order matters: members are destroyed in reverse, so the connector (with the fetcher,
// whose fetches in flight use the counters and hosts) goes first, and the disk threads go
// before the cache they read.
struct Gateway {
    explicit Gateway(const Config& c) : cfg(c) {}
    Gateway(const Gateway&) = delete;
    Gateway& operator=(const Gateway&) = delete;

    const Config cfg;
    Counters counters;
    LabelledCounters labelled;  // /metrics series by action, category, certificate error
    session::Lifecycle life;
    session::CertSource certs;
    session::Policy policy;
    admin::RulesHealth rules_health;
    std::unique_ptr<audit::Writer> audit;  // null when no audit sink is configured
    std::unique_ptr<audit::Shipper> shipper;  // audit.ship: the central trail
    session::AuditSink audit_sink{nullptr, labelled, counters, life.stopping};
    session::Authenticator auth{cfg, counters, policy.rules};
    RateBuckets rate_buckets;  // limits.client_rate, limits.group_rate
    std::unique_ptr<cache::Store> cache;  // null when cache.enabled is false
    net::thread_pool disk_pool{2};        // cache bodies read from disk, off the workers
    upstream::Connector upstream{cfg, counters};

    session::Services services() {
        return session::Services{cfg,   counters, wire::Context{cfg, counters}, policy, audit_sink, certs, upstream,
                                 session::CacheService{cache.get(), &disk_pool}, auth, rate_buckets, life};
    }
    admin::Sources admin_sources() {
        admin::Sources s{cfg,          counters, labelled,           life.stopping, life.active_sessions,
                         policy.rules, rules_health, certs.material, cache.get(),   audit.get()};
        s.shipper = shipper.get();
        return s;
    }
};

// Everything that can fail before serving (CA, hosts file, extra CA file, rules) throws with
// one clear line. `rules_stamp_out`: the loaded rule database's state, for the reloader.
// `create_state`: false for --check-config, which writes nothing (the warn key is made at start).
std::unique_ptr<Gateway> build_gateway(const Config& cfg, std::string* rules_stamp_out = nullptr,
                                       bool create_state = true);

// The key that signs Continue links and grants (inspect.warn_key_file; by default warn.key
// beside the CA folder): read, or created once (0600) when missing. A key readable by others,
// or not hex, is refused.
std::string warn_key_path(const Config& cfg);
std::string load_warn_key(const Config& cfg, bool create);

// The CA directory's material for minting (at start, and on SIGHUP when the CA was rotated).
std::shared_ptr<session::TlsMaterial> load_tls_material(const Config& cfg, Counters& counters);

// A system event (start, stop, ruleset swaps) in the audit log, like a transaction.
void audit_event(audit::Writer* audit, const std::string& what, const std::string& detail);

}  // namespace vigil::gateway

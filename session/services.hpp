// The services a session's phases use, each narrow, built once by the gateway's wiring
// (gateway/wiring.hpp) and shared by the workers. A phase takes the ones it uses; `Services`
// only bundles references for the accept phase, which hands them on.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "audit/writer.hpp"
#include "cache/store.hpp"
#include "core/snapshot.hpp"
#include "inspect/ruleset.hpp"
#include "io/rate.hpp"
#include "tls/material.hpp"
#include "upstream/connector.hpp"
#include "wire/context.hpp"

namespace vigil::identity {
class KerberosAcceptor;
class Directory;
}  // namespace vigil::identity

namespace vigil::session {

using namespace vigil::core;
using namespace vigil::io;
using namespace vigil::wire;
using upstream::Route;

// Hosts a client chose to continue to after a warn page, until a deadline. Shared by workers.
class WarnAllowances {
public:
    void allow(const std::string& client, const std::string& host, std::chrono::seconds for_how_long);
    bool allowed(const std::string& client, const std::string& host);

private:
    std::mutex mu_;
    std::unordered_map<std::string, std::chrono::steady_clock::time_point> until_;
};

// Policy: the ruleset in force (an immutable snapshot, swapped whole by the reloader), the
// warn-page allowances and the key that signs their Continue links.
struct Policy {
    Snapshot<const inspect::RuleSet> rules;
    WarnAllowances warned;
    std::string warn_key;  // HMAC key for continue links, random per process
    std::chrono::seconds warn_duration{3600};
};

// The audit sink: one record per transaction goes to the writer (null when no audit sink is
// configured); decisions and aborted transfers are also counted by label for /metrics.
struct AuditSink {
    audit::Writer* writer = nullptr;
    LabelledCounters& labelled;
    Counters& counters;
    const std::atomic<bool>& stopping;
};

using TlsMaterial = tls::Material;

// The certificate source for the client leg: minted leaves and the client-facing context.
struct CertSource {
    Snapshot<TlsMaterial> material;
    std::unique_ptr<net::ssl::context> client_ctx;  // we are the server to clients
};

// Open connections per client address, for limits.max_connections_per_client.
class ClientCounts {
public:
    // False (and nothing counted) when the client is at its limit.
    bool acquire(const std::string& client, size_t limit);
    void release(const std::string& client);

private:
    std::mutex mu_;
    std::unordered_map<std::string, size_t> counts_;
};

// Failed proxy sign-ins per client (throttling) and recently verified credentials.
class AuthState {
public:
    bool throttled(const std::string& client, int max_failures);
    void failed(const std::string& client);
    std::optional<std::vector<std::string>> cached(const std::string& key);
    void remember(const std::string& key, std::vector<std::string> groups, std::chrono::seconds ttl);

private:
    std::mutex mu_;
    std::unordered_map<std::string, std::pair<std::chrono::steady_clock::time_point, int>> failures_;
    std::unordered_map<std::string, std::pair<std::chrono::steady_clock::time_point, std::vector<std::string>>> cache_;
};

// Proxy authentication: Basic against the ruleset's users and the directory, Negotiate
// (Kerberos) with the service's keytab, groups from the directory. Password checks, ticket
// checks and directory lookups block: they run on the authenticator's own threads.
struct Authenticator {
    Authenticator(const Config& c, Counters& k, const Snapshot<const inspect::RuleSet>& r);
    ~Authenticator();
    const Config& cfg;
    Counters& counters;
    const Snapshot<const inspect::RuleSet>& rules;
    AuthState state;
    std::unique_ptr<identity::KerberosAcceptor> kerberos;  // auth.methods has "negotiate"
    std::unique_ptr<identity::Directory> directory;        // [ldap] url set
    net::thread_pool pool{4};
};

// The process's life as sessions see it: shutting down, how many are open, per-client limits.
struct Lifecycle {
    std::atomic<bool> draining{false};  // SIGTERM within proxy.drain_delay: still serving, not ready
    std::atomic<bool> stopping{false};
    std::atomic<int> active_sessions{0};
    std::atomic<uint64_t> next_conn_id{1};
    ClientCounts per_client;
};

// The response cache and the threads that read its bodies from disk (null: cache off).
struct CacheService {
    cache::Store* store = nullptr;
    net::thread_pool* disk = nullptr;
};

struct Services {
    const Config& cfg;
    Counters& counters;
    Context wire;  // cfg and counters, for the HTTP/1.1 layer
    Policy& policy;
    AuditSink& audit;
    CertSource& certs;
    upstream::Connector& upstream;
    CacheService cache;
    Authenticator& auth;
    RateBuckets& rate_buckets;
    Lifecycle& life;
};

// What the relay uses: the HTTP/1.1 layer's context, policy, the audit sink and the cache.
struct RelayServices {
    Context wire;
    Policy& policy;
    AuditSink& audit;
    CacheService cache;
    const std::atomic<bool>& stopping;
};

// A session's handle in its worker's registry, so shutdown can close idle keep-alive
// connections at once. Only the worker's own thread touches it.
struct SessionTrack {
    beast::tcp_stream* stream = nullptr;
    bool idle = false;
    Throttle* throttle = nullptr;  // the connection's bandwidth limits (owned by the session)
};

// Member order matters: destroying the io_context destroys suspended sessions, which
// unregister themselves from `sessions`; the acceptor must go before its io_context.
struct Worker {
    std::unordered_set<SessionTrack*> sessions;
    net::io_context ioc{1};
    std::unique_ptr<tcp::acceptor> acceptor;
};

// Registers a session for its whole life and keeps the active count.
class SessionScope {
public:
    SessionScope(Lifecycle& life, Worker& w, beast::tcp_stream* s) : life_(life), w_(w) {
        track_.stream = s;
        w_.sessions.insert(&track_);
        ++life_.active_sessions;
    }
    ~SessionScope() {
        w_.sessions.erase(&track_);
        --life_.active_sessions;
    }
    SessionScope(const SessionScope&) = delete;
    SessionScope& operator=(const SessionScope&) = delete;
    SessionTrack& track() { return track_; }

private:
    Lifecycle& life_;
    Worker& w_;
    SessionTrack track_;
};

// The accept phase: ACL, first request head, then plain relay or CONNECT.
net::awaitable<void> client_session(tcp::socket socket, Services& sv, Worker& worker);

}  // namespace vigil::session

// Internal: the state the gateway's sessions share (immutable after start, or atomic), and
// per-worker state. Included only by gateway sources that speak Asio.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include "gateway/config.hpp"
#include "gateway/counters.hpp"
#include "gateway/fetcher.hpp"
#include "gateway/http_cache.hpp"
#include "gateway/limits.hpp"
#include "gateway/parents.hpp"
#include "gateway/net_util.hpp"
#include "gateway/audit/writer.hpp"
#include "inspect/ruleset.hpp"
#include "tls/cert_cache.hpp"
#include "tls/revocation.hpp"

namespace vigil::gateway {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;
// Completion token that reports errors as values: no exceptions on the data path.
inline constexpr auto use_nothrow = net::as_tuple(net::use_awaitable);

// Hosts a client chose to continue to after a warn page, until a deadline. Shared by workers.
class WarnAllowances {
public:
    void allow(const std::string& client, const std::string& host, std::chrono::seconds for_how_long);
    bool allowed(const std::string& client, const std::string& host);

private:
    std::mutex mu_;
    std::unordered_map<std::string, std::chrono::steady_clock::time_point> until_;
};

// An immutable snapshot that is swapped whole: readers take a shared_ptr copy and keep it
// for as long as they need it. The lock is held for one pointer copy per transaction, and
// the old snapshot is released outside it.
template <class T>
class Snapshot {
public:
    std::shared_ptr<T> load() const {
        std::lock_guard lock(mu_);
        return ptr_;
    }
    void store(std::shared_ptr<T> next) {
        std::shared_ptr<T> old;
        {
            std::lock_guard lock(mu_);
            old = std::exchange(ptr_, std::move(next));
        }
        // `old` is released here, outside the lock.
    }

private:
    mutable std::mutex mu_;
    std::shared_ptr<T> ptr_;
};

// Everything minting needs, loaded from the CA directory. Swapped whole when the issuing CA
// is rotated (SIGHUP); a session keeps the material it started with until it ends.
struct TlsMaterial {
    std::shared_ptr<const tls::CaMaterial> ca;
    std::unique_ptr<tls::LeafMinter> minter;
    std::unique_ptr<tls::CertCache> certs;
    tls::X509StackPtr chain;  // sent after each minted leaf
    std::string issuer_fingerprint;
};

// Open connections per client address, for limits.max_connections_per_client.
class ClientCounts {
public:
    // False (and nothing counted) when the client is at its limit.
    bool acquire(const std::string& client, size_t limit) {
        std::lock_guard lock(mu_);
        size_t& n = counts_[client];
        if (n >= limit) return false;
        ++n;
        return true;
    }
    void release(const std::string& client) {
        std::lock_guard lock(mu_);
        auto it = counts_.find(client);
        if (it != counts_.end() && --it->second == 0) counts_.erase(it);
    }

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

struct Gateway {
    Config cfg;
    Counters counters;
    LabelledCounters labelled;  // /metrics series by action, category, certificate error
    HostsFile hosts;
    Snapshot<TlsMaterial> tls;
    std::unique_ptr<net::ssl::context> client_ctx;  // we are the server to clients
    // Intermediates fetched over AIA, offered to every origin handshake (before origin_ctx,
    // which refers to it).
    tls::IntermediatePool intermediates;
    std::unique_ptr<net::ssl::context> origin_ctx;  // we are the client to origins
    std::vector<tcp::endpoint> listen_endpoints;
    // The ruleset in force: an immutable snapshot, swapped whole by the reloader.
    Snapshot<const inspect::RuleSet> rules;
    // The reloader's last word: whether the newest attempt failed (the old ruleset serving), when
    // a ruleset was last loaded, and why the failing one was refused.
    struct RulesHealth {
        std::atomic<bool> failing{false};
        std::atomic<int64_t> last_success_ms{0};
        std::mutex mu;
        std::string error;  // under mu
    } rules_health;
    WarnAllowances warned;
    std::unique_ptr<audit::Writer> audit;  // null when no audit sink is configured
    std::string warn_key;  // HMAC key for continue links, random per process
    std::atomic<bool> stopping{false};
    std::atomic<int> active_sessions{0};
    ClientCounts per_client;
    AuthState auth;
    net::thread_pool auth_pool{1};  // password verification, off the workers
    std::atomic<uint64_t> next_conn_id{1};
    // Completing and checking origin chains: failed fetches (not retried for 5 minutes), OCSP
    // answers (the fetcher is the last member).
    tls::ExpiringCache<std::string> fetch_failures{4096};
    tls::ExpiringCache<tls::OcspAnswer> ocsp_answers{20000};
    RateBuckets rate_buckets;  // limits.client_rate, limits.group_rate
    Parents parents;           // upstream.parents (empty: everything goes direct)
    std::unique_ptr<cache::Store> cache;  // null when cache.enabled is false
    net::thread_pool disk_pool{2};  // cache bodies read from disk, off the workers (after the cache it reads)
    // Last, so it goes first: a fetch still in flight uses the parents, counters and hosts.
    std::unique_ptr<Fetcher> fetcher;  // null when neither AIA fetching nor OCSP is on
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
    SessionScope(Gateway& gw, Worker& w, beast::tcp_stream* s) : gw_(gw), w_(w) {
        track_.stream = s;
        w_.sessions.insert(&track_);
        ++gw_.active_sessions;
    }
    ~SessionScope() {
        w_.sessions.erase(&track_);
        --gw_.active_sessions;
    }
    SessionScope(const SessionScope&) = delete;
    SessionScope& operator=(const SessionScope&) = delete;
    SessionTrack& track() { return track_; }

private:
    Gateway& gw_;
    Worker& w_;
    SessionTrack track_;
};

// The accept phase: ACL, first request head, then plain relay or CONNECT.
net::awaitable<void> client_session(tcp::socket socket, Gateway& gw, Worker& worker);

}  // namespace vigil::gateway

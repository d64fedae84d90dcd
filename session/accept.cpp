// The accept phase: client ACL and connection limits, then the plain request loop until a
// CONNECT hands the connection over to the CONNECT phase.
#include <boost/beast/core.hpp>

#include "session/request_loop.hpp"

namespace vigil::session {

bool ClientCounts::acquire(const std::string& client, size_t limit) {
    std::lock_guard lock(mu_);
    size_t& n = counts_[client];
    if (n >= limit) return false;
    ++n;
    return true;
}

void ClientCounts::release(const std::string& client) {
    std::lock_guard lock(mu_);
    auto it = counts_.find(client);
    if (it != counts_.end() && --it->second == 0) counts_.erase(it);
}

namespace {

// Not in the session's frame (which lasts as long as the connection): the record is a kilobyte.
void record_refused_client(AuditSink& audit, audit::Record base) {
    base.kind = "refused";
    TxAudit refused(audit, base);
    refused.rec().action = "refuse";
    refused.rec().reason = "client address not in proxy.allow_clients";
}

}  // namespace

// Kept small: this frame lives as long as the client connection.
net::awaitable<void> client_session(tcp::socket socket, Services& sv, Worker& worker) {
    const uint64_t cid = sv.life.next_conn_id.fetch_add(1, std::memory_order_relaxed);
    error_code ec;
    auto remote = socket.remote_endpoint(ec);
    if (ec) co_return;
    count(sv.counters.accepted);
    audit::Record base;
    base.conn_id = cid;
    base.client_ip = remote.address().to_string();
    base.client_port = remote.port();
    base.tls_mode = "plain";
    if (!any_contains(sv.cfg.allow_clients, remote.address())) {
        count(sv.counters.refused_client);
        log_warn("client " + remote.address().to_string() + " is not in proxy.allow_clients; closed", cid);
        record_refused_client(sv.audit, base);
        co_return;
    }
    // Connection limits: a client (or all of them) past its share is closed at once, so a flood
    // of slow connections cannot starve everyone else.
    const std::string client_key = remote.address().to_string();
    if (static_cast<size_t>(sv.life.active_sessions.load()) >= sv.cfg.max_connections ||
        !sv.life.per_client.acquire(client_key, sv.cfg.max_connections_per_client)) {
        count(sv.counters.refused_limit);
        log_debug("connection limit reached for " + client_key + "; closed", cid);
        co_return;
    }
    struct Release {
        ClientCounts& counts;
        const std::string& key;
        ~Release() { counts.release(key); }
    } release{sv.life.per_client, client_key};
    socket.set_option(tcp::no_delay(true), ec);
    beast::tcp_stream stream(std::move(socket));
    SessionScope scope(sv.life, worker, &stream);
    beast::flat_buffer buf;
    log_debug("accepted " + remote.address().to_string() + ":" + std::to_string(remote.port()), cid);
    Throttle throttle;
    if (auto connect = co_await plain_requests(stream, buf, sv, scope.track(), base, remote, throttle)) {
        co_await connect_session(stream, buf, std::move(connect), sv, scope.track(), base);
        co_return;
    }
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
}

}  // namespace vigil::session

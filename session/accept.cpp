// The accept phase: client ACL and connection limits, then the plain request loop until a
// CONNECT hands the connection over to the CONNECT phase.
#include <boost/beast/core.hpp>

#include "session/request_loop.hpp"
#include "wire/proxy_protocol.hpp"

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

// The balancer's PROXY header, when proxy.proxy_protocol asks for one: read within
// timeouts.header_read, consumed from `buf`, and `remote` becomes the client it names. Returns
// "" or why the connection is refused.
net::awaitable<std::string> take_proxy_header(beast::tcp_stream& stream, beast::flat_buffer& buf, const Config& cfg,
                                              tcp::endpoint& remote, bool& local) {
    const std::string& mode = cfg.proxy_protocol;
    if (!any_contains(cfg.trusted_balancers, remote.address()))
        co_return mode == "optional" ? "" : "a PROXY header is expected, and only from proxy.trusted_balancers";
    stream.expires_after(cfg.header_read);
    for (;;) {
        const auto data = buf.cdata();
        auto h = wire::parse_proxy_header(std::string_view(static_cast<const char*>(data.data()), data.size()));
        using S = wire::ProxyHeader::Status;
        if (h.status == S::invalid) co_return h.error;
        if (h.status == S::none) co_return mode == "optional" ? "" : "no PROXY header from the balancer";
        if (h.status == S::ok) {
            if ((mode == "v1" && h.version != 1) || (mode == "v2" && h.version != 2))
                co_return "a PROXY v" + std::to_string(h.version) + " header where proxy.proxy_protocol is " + mode;
            buf.consume(h.size);
            if (h.source) remote = *h.source;
            local = !h.source;  // LOCAL: the balancer's own connection (a health check), no client
            co_return "";
        }
        auto [ec, n] = co_await stream.async_read_some(buf.prepare(1024), use_nothrow);
        if (ec) co_return "the balancer sent no PROXY header (" + ec.message() + ")";
        buf.commit(n);
    }
}

}  // namespace

// Kept small: this frame lives as long as the client connection.
net::awaitable<void> client_session(tcp::socket socket, Services& sv, Worker& worker) {
    const uint64_t cid = sv.life.next_conn_id.fetch_add(1, std::memory_order_relaxed);
    error_code ec;
    auto remote = socket.remote_endpoint(ec);
    if (ec) co_return;
    count(sv.counters.accepted);
    socket.set_option(tcp::no_delay(true), ec);
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buf;
    bool balancer_itself = false;
    if (sv.cfg.proxy_protocol != "off") {
        const auto balancer = remote;
        const std::string refused = co_await take_proxy_header(stream, buf, sv.cfg, remote, balancer_itself);
        if (!refused.empty()) {
            count(sv.counters.refused_client);
            log_warn("connection from " + balancer.address().to_string() + " refused: " + refused, cid);
            co_return;
        }
    }
    audit::Record base;
    base.conn_id = cid;
    base.client_ip = remote.address().to_string();
    base.client_port = remote.port();
    base.tls_mode = "plain";
    if (balancer_itself && !any_contains(sv.cfg.allow_clients, remote.address())) {
        log_debug("a PROXY LOCAL connection from the balancer (a health check?); closed", cid);
        co_return;
    }
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
    SessionScope scope(sv.life, worker, &stream);
    log_debug("accepted " + remote.address().to_string() + ":" + std::to_string(remote.port()), cid);
    Throttle throttle;
    if (auto connect = co_await plain_requests(stream, buf, sv, scope.track(), base, remote, throttle)) {
        co_await connect_session(stream, buf, std::move(connect), sv, scope.track(), base);
        co_return;
    }
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
}

}  // namespace vigil::session

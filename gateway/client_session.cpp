// The accept phase and plain-HTTP relay: client ACL, request heads, absolute-form requests
// forwarded to origins; a CONNECT hands the connection over to the bump phase.
#include <boost/beast/core.hpp>

#include "gateway/http_io.hpp"
#include "gateway/auth.hpp"
#include "gateway/onboarding.hpp"
#include "gateway/relay.hpp"
#include "gateway/upstream.hpp"

namespace vigil::gateway {
namespace {

std::optional<PageInfo> check_plain_target(Gateway& gw, const http::request<http::buffer_body>& req,
                                           std::optional<AbsoluteUrl>& url) {
    auto target = req.target();
    url = parse_absolute_url(target);
    if (!url) {
        if (!target.empty() && target.front() == '/')
            return PageInfo{400, "This is a web proxy",
                            "Vigil is a forward proxy: configure it as your HTTP and HTTPS proxy instead of "
                            "opening it as a web site",
                            "", "not_a_proxy_request"};
        return PageInfo{400, "Bad request", "the request target is not an absolute http:// URL",
                        std::string(target.substr(0, 200)), "bad_target"};
    }
    if (url->scheme != "http")
        return PageInfo{400, "Bad request", "https:// URLs must be requested through CONNECT",
                        std::string(target.substr(0, 200)), "bad_target"};
    auto host = req[http::field::host];
    if (req.count(http::field::host) > 1) return PageInfo{400, "Bad request", "more than one Host header", "", "bad_host"};
    if (!host.empty()) {
        auto h = parse_authority(host, uint16_t(80));
        if (!h || h->host != url->authority.host || h->port != url->authority.port)
            return PageInfo{400, "Bad request", "the Host header does not match the request URL",
                            url->authority.host_port(), "host_mismatch"};
    }
    if (!any_contains(gw.cfg.allowed_http_ports, url->authority.port)) {
        bump(gw.counters.connect_denied);
        return PageInfo{403, "Port not allowed",
                        "plain HTTP to port " + std::to_string(url->authority.port) + " is not allowed by this gateway",
                        url->authority.host_port(), "port_not_allowed"};
    }
    return std::nullopt;
}

// A request whose body was not read cannot be followed by another on the same connection.
bool req_done(const RequestParser& p) { return p.is_done(); }

// The plain-HTTP request loop of one client connection. Returns the head of a CONNECT when one
// arrives (the caller then hands the connection to the CONNECT phase, after this frame, with
// its relay and buffers, is gone: an idle bumped connection does not carry it), or null when
// the connection is done.
net::awaitable<std::unique_ptr<RequestParser>> plain_requests(beast::tcp_stream& stream, beast::flat_buffer& buf,
                                                              Gateway& gw, SessionTrack& track, audit::Record& base,
                                                              const tcp::endpoint& remote, Throttle& throttle) {
    const uint64_t cid = base.conn_id;
    HttpRelay<beast::tcp_stream, beast::tcp_stream> relay(
        gw, stream, buf, cid, remote.address().to_string(),
        [&gw, cid](const Authority& a, std::optional<beast::tcp_stream>& up, Route& route) {
            route.http = true;
            return connect_tcp(gw, a, up, cid, &route);
        });
    relay.audit_base() = base;
    // Bandwidth limits: bound to the client's address now and to its groups once it signs in
    // (the throttle belongs to the connection: a CONNECT's tunnel keeps using it).
    const bool rate_limits = gw.cfg.client_rate > 0 || !gw.cfg.group_rates.empty();
    if (rate_limits) {
        throttle.bind(gw.rate_buckets, gw.cfg, base.client_ip, {});
        relay.set_throttle(&throttle);
        track.throttle = &throttle;
    }

    for (bool first = true;; first = false) {
        if (gw.stopping && !first && buf.size() == 0) break;
        track.idle = buf.size() == 0;
        // Parked, a plain connection keeps its origin connection (there is no pool for plain
        // ones); its read buffer goes.
        auto head = co_await next_request_head(stream, buf, gw, first, [] {});
        track.idle = false;
        if (head.status == HeadRead::closed || head.status == HeadRead::idle) break;
        if (head.status == HeadRead::rejected) {
            if (head.rejection.status != 408) bump(gw.counters.bad_request);
            TxAudit tx(gw, base);
            PageInfo info{head.rejection.status, rejection_title(head.rejection.status), head.rejection.reason, "",
                          rejection_code(head.rejection.status), cid};
            co_await write_page(stream, gw, info, 11, &tx);
            break;
        }
        bump(gw.counters.requests);
        auto& req = head.parser->get();
        // Proxy authentication: every request to the proxy carries its own credentials; a
        // CONNECT's identity then holds for everything inside the tunnel.
        const address client_addr = remote.address();
        AuthResult who = co_await authenticate(gw, req.base(), client_addr, cid);
        if (who.refusal) {
            TxAudit tx(gw, base);
            tx.rec().method = std::string(req.method_string());
            tx.rec().url = std::string(req.target()).substr(0, 2048);
            co_await write_page(stream, gw, *who.refusal, req.version(), &tx);
            break;
        }
        base.user = who.identity->user;
        base.group.clear();
        for (const auto& g : who.identity->groups) base.group += (base.group.empty() ? "" : ",") + g;
        relay.audit_base().user = base.user;
        relay.audit_base().group = base.group;
        if (rate_limits) throttle.bind(gw.rate_buckets, gw.cfg, base.client_ip, who.identity->groups);
        if (req.method() == http::verb::connect) co_return std::move(head.parser);
        if (auto onboarding = parse_absolute_url(req.target());
            onboarding && onboarding->scheme == "http" && !gw.cfg.onboarding_host.empty() &&
            onboarding->authority.host == gw.cfg.onboarding_host) {
            // Served by the gateway itself, before any destination check: it never leaves the proxy.
            auto page = onboarding_response(gw.tls.load()->ca->root.get(), onboarding->target);
            http::response<http::string_body> res{static_cast<http::status>(page.status), 11};
            res.set(http::field::server, "Vigil");
            res.set(http::field::content_type, page.content_type);
            res.set(http::field::cache_control, "no-store");
            if (!page.filename.empty())
                res.set(http::field::content_disposition, "attachment; filename=\"" + page.filename + "\"");
            res.body() = std::move(page.body);
            res.keep_alive(req.keep_alive());
            res.prepare_payload();
            stream.expires_after(gw.cfg.io);
            auto [wec, wn] = co_await http::async_write(stream, res, use_nothrow);
            bump(gw.counters.bytes_out, wn);
            if (wec || !req.keep_alive() || !req_done(*head.parser)) break;
            continue;
        }
        std::optional<AbsoluteUrl> url;
        if (auto refused = check_plain_target(gw, req, url)) {
            refused->conn_id = cid;
            if (refused->status == 400) bump(gw.counters.bad_request);
            TxAudit tx(gw, base);
            tx.rec().method = std::string(req.method_string());
            tx.rec().url = std::string(req.target()).substr(0, 2048);
            co_await write_page(stream, gw, *refused, req.version(), &tx);
            break;
        }
        bump(gw.counters.plain);
        if (!co_await relay.transaction(*head.parser, url->authority, url->target, false)) break;
    }
    co_return nullptr;
}

// Not in the session's frame (which lasts as long as the connection): the record is a kilobyte.
void record_refused_client(Gateway& gw, audit::Record base) {
    base.kind = "refused";
    TxAudit refused(gw, base);
    refused.rec().action = "refuse";
    refused.rec().reason = "client address not in proxy.allow_clients";
}

}  // namespace

// The accept phase: client ACL and connection limits, then plain requests until a CONNECT hands
// the connection over to the CONNECT phase. Kept small: this frame lives as long as the client.
net::awaitable<void> client_session(tcp::socket socket, Gateway& gw, Worker& worker) {
    const uint64_t cid = gw.next_conn_id.fetch_add(1, std::memory_order_relaxed);
    error_code ec;
    auto remote = socket.remote_endpoint(ec);
    if (ec) co_return;
    bump(gw.counters.accepted);
    audit::Record base;
    base.conn_id = cid;
    base.client_ip = remote.address().to_string();
    base.client_port = remote.port();
    base.tls_mode = "plain";
    if (!any_contains(gw.cfg.allow_clients, remote.address())) {
        bump(gw.counters.refused_client);
        log_warn("client " + remote.address().to_string() + " is not in proxy.allow_clients; closed", cid);
        record_refused_client(gw, base);
        co_return;
    }
    // Connection limits: a client (or all of them) past its share is closed at once, so a flood
    // of slow connections cannot starve everyone else.
    const std::string client_key = remote.address().to_string();
    if (static_cast<size_t>(gw.active_sessions.load()) >= gw.cfg.max_connections ||
        !gw.per_client.acquire(client_key, gw.cfg.max_connections_per_client)) {
        bump(gw.counters.refused_limit);
        log_debug("connection limit reached for " + client_key + "; closed", cid);
        co_return;
    }
    struct Release {
        Gateway& gw;
        const std::string& key;
        ~Release() { gw.per_client.release(key); }
    } release{gw, client_key};
    socket.set_option(tcp::no_delay(true), ec);
    beast::tcp_stream stream(std::move(socket));
    SessionScope scope(gw, worker, &stream);
    beast::flat_buffer buf;
    log_debug("accepted " + remote.address().to_string() + ":" + std::to_string(remote.port()), cid);
    Throttle throttle;
    if (auto connect = co_await plain_requests(stream, buf, gw, scope.track(), base, remote, throttle)) {
        co_await connect_session(stream, buf, std::move(connect), gw, scope.track(), base);
        co_return;
    }
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
}

}  // namespace vigil::gateway

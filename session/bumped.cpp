// Inside a bumped tunnel: the origin connection (verified, or the reason it is not, shown on
// the first request), then the one request loop, each request relayed as its own transaction.
#include "session/bumped_step.hpp"
#include "session/policy.hpp"

namespace vigil::session {

std::optional<Failure> check_bumped_target(Counters& counters, const http::request<http::buffer_body>& req,
                                           const Authority& origin, std::string& target) {
    auto raw = req.target();
    if (!raw.empty() && raw.front() == '/') {
        target = std::string(raw);
    } else if (auto url = parse_absolute_url(raw); url && url->scheme == "https") {
        if (url->authority.host != origin.host || url->authority.port != origin.port)
            return fail(counters, Fail::misdirected, "the request URL names a different host than the tunnel",
                        origin.host_port());
        target = url->target;
    } else {
        return fail(counters, Fail::bad_target, "the request target is not a path", origin.host_port());
    }
    if (req.count(http::field::host) != 1)
        return fail(counters, Fail::bad_host, "a request needs exactly one Host header", origin.host_port());
    auto host = parse_authority(req[http::field::host], uint16_t(443));
    if (!host || host->host != origin.host || host->port != origin.port)
        return fail(counters, Fail::misdirected, "the Host header names a different host than the tunnel",
                    origin.host_port());
    return std::nullopt;
}

bool TunnelOrigin::continued() const {
    return !sv_.cfg.origin_error_warn.empty() &&
           sv_.policy.warned.allowed(base_.client_ip, upstream::cert_warning_key(tunnel_.origin.host));
}

net::awaitable<void> TunnelOrigin::connect() {
    const Authority& origin = tunnel_.origin;
    std::optional<OriginStream> upstream;
    std::string accepted;
    Route route;
    auto failure = co_await upstream::connect_origin(sv_.upstream, origin, upstream, base_.conn_id, continued(), &accepted, &route);
    warning_ = false;
    refusal_.reset();
    ++generation_;
    if (!failure) {
        base_.origin_cert = accepted.empty() ? "ok" : accepted;
        base_.origin_tls = tls_params(upstream->ssl());
        if (upstream->is_h2()) base_.origin_tls += " h2";
        ready_ = std::move(upstream);
        route_ = std::move(route);
    } else {
        base_.origin_cert = failure->name();
        if (upstream::warnable_certificate_problem(sv_.cfg, *failure)) {
            problem_ = *failure;
            warning_ = true;
            refusal_ = warning_page(tunnel_.site_url);
        } else {
            refusal_ = page_for(*failure, base_.conn_id);
        }
    }
}

net::awaitable<std::optional<Failure>> TunnelOrigin::reconnect(const Authority& a, std::optional<OriginStream>& up,
                                                               Route& route) {
    co_return co_await upstream::connect_origin(sv_.upstream, a, up, base_.conn_id, continued(), nullptr, &route);
}

void TunnelOrigin::blocked() {
    count(sv_.counters.blocked);
    refusal_ = block_page(tunnel_.verdict, tunnel_.site_url, base_.conn_id);
    ++generation_;
}

// The warning for another URL leads back to that URL.
net::awaitable<std::string> TunnelOrigin::maybe_continue(RequestParser& parser) {
    const Authority& origin = tunnel_.origin;
    std::string t(parser.get().target());
    const std::string key = upstream::cert_warning_key(origin.host);
    std::string cookie;
    if (auto cont = take_continue_token(sv_.policy, t, base_.client_ip, key); cont && *cont) {
        log_info("user continued past the certificate warning for " + origin.host_port(), base_.conn_id);
        parser.get().target(t);
        cookie = grant_cookie(sv_.policy, base_.client_ip, key, true);
        co_await connect();
    } else if (!cont && has_grant(sv_.policy, parser.get().base(), base_.client_ip, key)) {
        // A grant from earlier (this gateway before a restart, or another one with the key).
        co_await connect();
    }
    if (warning_) refusal_ = warning_page(full_url("https", origin, t));
    co_return cookie;
}

// The warning for `url`: its Continue link returns to that URL and accepts the problem.
PageInfo TunnelOrigin::warning_page(const std::string& url) const {
    inspect::Verdict v;
    v.action = inspect::Action::warn;
    v.rule = "origin-certificate";
    v.reason = problem_.detail;
    PageInfo w = warn_page(sv_.policy, v, url, base_.client_ip, upstream::cert_warning_key(tunnel_.origin.host),
                           base_.conn_id);
    w.title = "This site's certificate has a problem";
    w.reason = problem_.detail + " (" + problem_.name() + "). Continue only if you trust this site; the decision is recorded.";
    return w;
}

net::awaitable<void> bumped_requests(BumpedTunnel& tunnel, beast::flat_buffer& buf, Services& sv,
                                     SessionTrack& track, audit::Record& base) {
    TlsStream& client = tunnel.client;
    TunnelOrigin tunnel_origin(sv, tunnel, base);
    auto connect_origin = [&tunnel_origin](const Authority& a, std::optional<OriginStream>& up, Route& route) {
        return tunnel_origin.reconnect(a, up, route);
    };
    HttpRelay<TlsStream, OriginStream> relay(relay_services(sv), client, buf, base.conn_id, base.client_ip, connect_origin);
    relay.set_throttle(track.throttle);
    if (tunnel.verdict.action == inspect::Action::block) tunnel_origin.blocked();
    else co_await tunnel_origin.connect();
    tunnel_origin.hand_to(relay.origin());
    relay.audit_base() = base;
    unsigned seen = tunnel_origin.generation();

    // Parked or ended, the origin connection may serve the next client connection of this
    // worker (upstream::pool_idle says when).
    auto to_pool = [&](bool parking) {
        std::string key;
        std::shared_ptr<upstream::ParentLease> lease;
        auto idle = parking ? relay.origin().park(key, lease) : relay.origin().release_idle(key, lease);
        upstream::pool_idle(std::move(idle), std::move(key), std::move(lease), sv.life.stopping);
    };
    auto park = [&] {
        to_pool(true);
        client.release_idle_buffers();
    };
    auto step = [&](RequestParser& parser) -> net::awaitable<Step> {
        co_return co_await bumped_step(client, sv, base, tunnel, tunnel_origin, relay, seen, parser);
    };
    co_await request_loop(client, buf, sv, track, base, &tunnel.origin, park, step);
    to_pool(false);
    // close_notify, so clients can tell a finished connection from a truncated one.
    lowest(client).expires_after(std::chrono::seconds(2));
    co_await client.async_shutdown(use_nothrow);
}

}  // namespace vigil::session

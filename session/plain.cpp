// Plain HTTP: absolute-form requests (GET http://host/...) through the one request loop — proxy
// sign-in, the onboarding page, target checks, then the relay to the origin over TCP. A CONNECT
// ends this phase and goes to connect.cpp.
#include <boost/beast/core.hpp>

#include "session/auth.hpp"
#include "session/relay.hpp"
#include "session/request_loop.hpp"
#include "wire/onboarding.hpp"

namespace vigil::session {
namespace {

std::optional<Failure> check_plain_target(const Config& cfg, Counters& counters,
                                          const http::request<http::buffer_body>& req, std::optional<AbsoluteUrl>& url) {
    auto target = req.target();
    url = parse_absolute_url(target);
    if (!url) {
        if (!target.empty() && target.front() == '/')
            return fail(counters, Fail::not_a_proxy_request,
                        "Vigil is a forward proxy: configure it as your HTTP and HTTPS proxy instead of "
                        "opening it as a web site");
        return fail(counters, Fail::bad_target, "the request target is not an absolute http:// URL",
                    std::string(target.substr(0, 200)));
    }
    if (url->scheme != "http")
        return fail(counters, Fail::bad_target, "https:// URLs must be requested through CONNECT",
                    std::string(target.substr(0, 200)));
    auto host = req[http::field::host];
    if (req.count(http::field::host) > 1) return fail(counters, Fail::bad_host, "more than one Host header");
    if (!host.empty()) {
        auto h = parse_authority(host, uint16_t(80));
        if (!h || h->host != url->authority.host || h->port != url->authority.port)
            return fail(counters, Fail::host_mismatch, "the Host header does not match the request URL",
                        url->authority.host_port());
    }
    if (!any_contains(cfg.allowed_http_ports, url->authority.port))
        return fail(counters, Fail::port_not_allowed,
                    "plain HTTP to port " + std::to_string(url->authority.port) + " is not allowed by this gateway",
                    url->authority.host_port());
    return std::nullopt;
}

bool is_onboarding(const Config& cfg, const http::request<http::buffer_body>& req) {
    auto url = parse_absolute_url(req.target());
    return url && url->scheme == "http" && !cfg.onboarding_host.empty() && url->authority.host == cfg.onboarding_host;
}

// The onboarding page is served by the gateway itself, before any destination check: it never
// leaves the proxy. Returns whether the connection may carry another request.
net::awaitable<bool> serve_onboarding(beast::tcp_stream& stream, Services& sv, RequestParser& parser) {
    auto& req = parser.get();
    auto url = parse_absolute_url(req.target());
    // The PAC's fallback proxy is the address this client reached the proxy at (the onboarding
    // host's name means nothing to a client without a proxy).
    error_code lec;
    const auto local = stream.socket().local_endpoint(lec);
    const std::string local_host = local.address().is_v6() ? "[" + local.address().to_string() + "]" : local.address().to_string();
    auto page = onboarding_response(sv.certs.material.load()->ca->root.get(), url->target, sv.cfg, local_host,
                                    local.port());
    http::response<http::string_body> res{static_cast<http::status>(page.status), 11};
    res.set(http::field::server, "Vigil");
    res.set(http::field::content_type, page.content_type);
    res.set(http::field::cache_control, "no-store");
    if (!page.filename.empty())
        res.set(http::field::content_disposition, "attachment; filename=\"" + page.filename + "\"");
    res.body() = std::move(page.body);
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    stream.expires_after(sv.cfg.io);
    auto [wec, wn] = co_await http::async_write(stream, res, use_nothrow);
    count(sv.counters.bytes_out, wn);
    // A request whose body was not read cannot be followed by another on the same connection.
    co_return !wec && req.keep_alive() && parser.is_done();
}

}  // namespace

// Returns the head of a CONNECT when one arrives (the caller then hands the connection to the
// CONNECT phase, after this frame, with its relay and buffers, is gone: an idle bumped
// connection does not carry it), or null when the connection is done.
net::awaitable<std::unique_ptr<RequestParser>> plain_requests(beast::tcp_stream& stream, beast::flat_buffer& buf,
                                                              Services& sv, SessionTrack& track, audit::Record& base,
                                                              const tcp::endpoint& remote, Throttle& throttle) {
    const uint64_t cid = base.conn_id;
    upstream::Connector& connector = sv.upstream;
    HttpRelay<beast::tcp_stream, beast::tcp_stream> relay(
        relay_services(sv), stream, buf, cid, remote.address().to_string(),
        [&connector, cid](const Authority& a, std::optional<beast::tcp_stream>& up, Route& route) {
            route.http = true;
            return upstream::connect_tcp(connector, a, up, cid, &route);
        });
    relay.audit_base() = base;
    // Bandwidth limits: bound to the client's address now and to its groups once it signs in
    // (the throttle belongs to the connection: a CONNECT's tunnel keeps using it).
    const bool rate_limits = sv.cfg.rates.client_rate > 0 || !sv.cfg.rates.group_rates.empty();
    if (rate_limits) {
        throttle.bind(sv.rate_buckets, sv.cfg.rates, base.client_ip, {});
        relay.set_throttle(&throttle);
        track.throttle = &throttle;
    }

    std::optional<Identity> connection_identity;  // Negotiate: the connection's sign-in
    auto step = [&](RequestParser& parser) -> net::awaitable<Step> {
        auto& req = parser.get();
        // Proxy authentication: every request to the proxy carries its own credentials; a
        // CONNECT's identity then holds for everything inside the tunnel.
        AuthResult who = co_await authenticate(sv.auth, req.base(), remote.address(), cid, connection_identity);
        if (who.refusal) {
            base.user = who.refused_user;
            co_await refused_request(stream, sv, base, req, *who.refusal, nullptr);
            co_return Step::stop;
        }
        base.user = who.identity->user;
        base.group.clear();
        for (const auto& g : who.identity->groups) base.group += (base.group.empty() ? "" : ",") + g;
        base.reason = who.identity->note;
        relay.audit_base().user = base.user;
        relay.audit_base().group = base.group;
        relay.audit_base().reason = base.reason;
        if (rate_limits) throttle.bind(sv.rate_buckets, sv.cfg.rates, base.client_ip, who.identity->groups);
        if (req.method() == http::verb::connect) co_return Step::connect;
        if (is_onboarding(sv.cfg, req)) co_return co_await serve_onboarding(stream, sv, parser) ? Step::next : Step::stop;
        std::optional<AbsoluteUrl> url;
        if (auto refused = check_plain_target(sv.cfg, sv.counters, req, url)) {
            const PageInfo page = page_for(*refused, cid);
            co_await refused_request(stream, sv, base, req, page, nullptr);
            co_return Step::stop;
        }
        count(sv.counters.plain);
        co_return co_await relay.transaction(parser, url->authority, url->target, false) ? Step::next : Step::stop;
    };
    // Parked, a plain connection keeps its origin connection (there is no pool for plain ones);
    // its read buffer goes.
    co_return co_await request_loop(stream, buf, sv, track, base, nullptr, [] {}, step);
}

}  // namespace vigil::session

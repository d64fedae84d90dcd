// Inside a bumped tunnel: the origin connection (verified, or the reason it is not, shown on
// the first request), then the one request loop, each request relayed as its own transaction.
#include "session/policy.hpp"
#include "session/relay.hpp"
#include "session/request_loop.hpp"
#include "session/tunnel.hpp"

namespace vigil::session {
namespace {

// Inside the bump every request must be for the CONNECTed origin: anything else would let a
// client reach one host while the gateway's decisions were made for another.
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

// The tunnel's origin: connected (and adopted by the relay), or why not — a page for the
// first request. A certificate problem that tls.origin_errors sets to "warn" becomes a warning
// whose Continue link accepts it for this client and host.
class TunnelOrigin {
public:
    TunnelOrigin(Services& sv, HttpRelay<TlsStream, TlsStream>& relay, BumpedTunnel& tunnel, audit::Record& base)
        : sv_(sv), relay_(relay), tunnel_(tunnel), base_(base) {}

    net::awaitable<void> connect() {
        const Authority& origin = tunnel_.origin;
        const uint64_t cid = base_.conn_id;
        std::optional<TlsStream> upstream;
        std::string accepted;
        Route route;
        const bool continued = !sv_.cfg.origin_error_warn.empty() &&
                               sv_.policy.warned.allowed(base_.client_ip, upstream::cert_warning_key(origin.host));
        auto failure = co_await upstream::connect_tls(sv_.upstream, origin, upstream, cid, continued, &accepted, &route);
        warning_ = false;
        refusal_.reset();
        if (!failure) {
            base_.origin_cert = accepted.empty() ? "ok" : accepted;
            base_.origin_tls = tls_params(upstream->native_handle());
            relay_.origin().adopt(std::move(upstream), origin, std::move(route));
        } else {
            base_.origin_cert = failure->name();
            if (upstream::warnable_certificate_problem(sv_.cfg, *failure)) {
                problem_ = *failure;
                warning_ = true;
                refusal_ = warning_page(tunnel_.site_url);
            } else {
                refusal_ = page_for(*failure, cid);
            }
        }
        relay_.audit_base() = base_;
    }

    // Blocked by host: the client still gets a readable HTTPS page; the origin is never contacted.
    void blocked() {
        count(sv_.counters.blocked);
        refusal_ = block_page(tunnel_.verdict, tunnel_.site_url, base_.conn_id);
        relay_.audit_base() = base_;
    }

    // "Continue" on the certificate warning: a valid link records the user's decision (for
    // warn_duration) and the origin is contacted again, accepting those problems. The warning
    // for another URL leads back to that URL.
    net::awaitable<void> maybe_continue(RequestParser& parser) {
        const Authority& origin = tunnel_.origin;
        std::string t(parser.get().target());
        const std::string key = upstream::cert_warning_key(origin.host);
        if (auto cont = take_continue_token(sv_.policy, t, base_.client_ip, key); cont && *cont) {
            log_info("user continued past the certificate warning for " + origin.host_port(), base_.conn_id);
            parser.get().target(t);
            relay_.set_cookie_on_next_response(grant_cookie(sv_.policy, base_.client_ip, key, true));
            co_await connect();
        } else if (!cont && has_grant(sv_.policy, parser.get().base(), base_.client_ip, key)) {
            // A grant from earlier (this gateway before a restart, or another one with the key).
            co_await connect();
        }
        if (warning_) refusal_ = warning_page(full_url("https", origin, t));
    }

    const std::optional<PageInfo>& refusal() const { return refusal_; }
    bool warning() const { return warning_; }  // a certificate warning the user may continue past

private:
    // The warning for `url`: its Continue link returns to that URL and accepts the problem.
    PageInfo warning_page(const std::string& url) const {
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

    Services& sv_;
    HttpRelay<TlsStream, TlsStream>& relay_;
    BumpedTunnel& tunnel_;
    audit::Record& base_;
    std::optional<PageInfo> refusal_;  // what the next request gets instead of the origin
    bool warning_ = false;             // refusal_ is a warning the user may continue past
    Failure problem_{Fail::origin_certificate, {}};  // then: the certificate problem itself
};

}  // namespace

net::awaitable<void> bumped_requests(BumpedTunnel& tunnel, beast::flat_buffer& buf, Services& sv,
                                     SessionTrack& track, audit::Record& base) {
    TlsStream& client = tunnel.client;
    const Authority& origin = tunnel.origin;
    const uint64_t cid = base.conn_id;
    upstream::Connector& connector = sv.upstream;
    auto connect_origin = [&connector, cid](const Authority& a, std::optional<TlsStream>& up, Route& route) {
        return upstream::connect_tls(connector, a, up, cid, false, nullptr, &route);
    };
    HttpRelay<TlsStream, TlsStream> relay(relay_services(sv), client, buf, cid, base.client_ip, connect_origin);
    relay.set_throttle(track.throttle);
    TunnelOrigin tunnel_origin(sv, relay, tunnel, base);
    if (tunnel.verdict.action == inspect::Action::block) tunnel_origin.blocked();
    else co_await tunnel_origin.connect();

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
        // The origin's certificate failed (or it was unreachable), or the host is blocked: say so
        // on the first request, inside TLS, so the browser shows it.
        if (tunnel_origin.warning()) co_await tunnel_origin.maybe_continue(parser);
        std::optional<PageInfo> refused = tunnel_origin.refusal();
        std::string target;
        if (!refused) {
            if (auto bad = check_bumped_target(sv.counters, parser.get(), origin, target)) refused = page_for(*bad, cid);
        }
        if (refused) {
            refused->conn_id = cid;
            const bool blocked = tunnel.verdict.action == inspect::Action::block;
            co_await refused_request(client, sv, base, parser.get(), *refused, &origin, blocked ? &tunnel.verdict : nullptr);
            co_return Step::stop;
        }
        co_return co_await relay.transaction(parser, origin, target, true) ? Step::next : Step::stop;
    };
    co_await request_loop(client, buf, sv, track, base, &origin, park, step);
    to_pool(false);
    // close_notify, so clients can tell a finished connection from a truncated one.
    lowest(client).expires_after(std::chrono::seconds(2));
    co_await client.async_shutdown(use_nothrow);
}

}  // namespace vigil::session

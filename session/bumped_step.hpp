// What every request inside a bumped tunnel goes through, over HTTP/1.1 (bumped.cpp) or as an
// HTTP/2 stream (h2_connection.cpp): the tunnel's origin (verified, or the reason it is not,
// shown on the request), the check that the request is for the tunnel's host, then the relay.
#pragma once

#include <optional>
#include <string>

#include "session/relay.hpp"
#include "session/request_loop.hpp"
#include "session/tunnel.hpp"

namespace vigil::session {

using upstream::OriginStream;

// Inside the bump every request must be for the CONNECTed origin: anything else would let a
// client reach one host while the gateway's decisions were made for another.
std::optional<Failure> check_bumped_target(Counters& counters, const http::request<http::buffer_body>& req,
                                           const Authority& origin, std::string& target);

// The tunnel's origin: connected (the connection kept for the relay that serves the next
// request), or why not — a page for the requests. A certificate problem that
// tls.origin_errors sets to "warn" becomes a warning whose Continue link accepts it for this
// client and host.
class TunnelOrigin {
public:
    TunnelOrigin(Services& sv, BumpedTunnel& tunnel, audit::Record& base) : sv_(sv), tunnel_(tunnel), base_(base) {}

    net::awaitable<void> connect();
    // Blocked by host: the client still gets a readable HTTPS page; the origin is never contacted.
    void blocked();
    // "Continue" on the certificate warning: a valid link records the user's decision (for
    // warn_duration) and the origin is contacted again, accepting those problems. Returns the
    // grant cookie the next response carries ("" if none).
    net::awaitable<std::string> maybe_continue(RequestParser& parser);

    // The connection connect() made, for the relay that serves the next request.
    template <class OriginConnection>
    void hand_to(OriginConnection& o) {
        if (!ready_) return;
        o.adopt(std::move(ready_), tunnel_.origin, std::move(route_));
        ready_.reset();
    }
    // New connections to the origin (a relay's own) accept what the user continued past.
    net::awaitable<std::optional<Failure>> reconnect(const Authority& a, std::optional<OriginStream>& up, Route& route);
    const std::optional<PageInfo>& refusal() const { return refusal_; }
    bool warning() const { return warning_; }  // a certificate warning the user may continue past
    unsigned generation() const { return generation_; }  // changes whenever the audit base does

private:
    PageInfo warning_page(const std::string& url) const;
    bool continued() const;  // the user continued past this host's certificate warning

    Services& sv_;
    BumpedTunnel& tunnel_;
    audit::Record& base_;
    std::optional<OriginStream> ready_;
    Route route_;
    std::optional<PageInfo> refusal_;  // what the next request gets instead of the origin
    bool warning_ = false;             // refusal_ is a warning the user may continue past
    unsigned generation_ = 0;
    Failure problem_{Fail::origin_certificate, {}};  // then: the certificate problem itself
};

// One request of a bumped tunnel on `client`: the tunnel's refusal if it has one, else the
// relay's transaction.
template <class Client>
net::awaitable<Step> bumped_step(Client& client, Services& sv, const audit::Record& base, BumpedTunnel& tunnel,
                                 TunnelOrigin& tunnel_origin, HttpRelay<Client, OriginStream>& relay, unsigned& seen,
                                 RequestParser& parser) {
    const uint64_t cid = base.conn_id;
    if (tunnel_origin.warning()) {
        if (auto cookie = co_await tunnel_origin.maybe_continue(parser); !cookie.empty())
            relay.set_cookie_on_next_response(std::move(cookie));
    }
    tunnel_origin.hand_to(relay.origin());
    if (seen != tunnel_origin.generation()) {
        seen = tunnel_origin.generation();
        relay.audit_base() = base;
    }
    // The origin's certificate failed (or it was unreachable), or the host is blocked: say so
    // on the request, inside TLS, so the browser shows it.
    std::optional<PageInfo> refused = tunnel_origin.refusal();
    std::string target;
    if (!refused) {
        if (auto bad = check_bumped_target(sv.counters, parser.get(), tunnel.origin, target)) refused = page_for(*bad, cid);
    }
    if (refused) {
        refused->conn_id = cid;
        const bool blocked = tunnel.verdict.action == inspect::Action::block;
        co_await refused_request(client, sv, base, parser.get(), *refused, &tunnel.origin, blocked ? &tunnel.verdict : nullptr);
        co_return Step::stop;
    }
    co_return co_await relay.transaction(parser, tunnel.origin, target, true) ? Step::next : Step::stop;
}

}  // namespace vigil::session

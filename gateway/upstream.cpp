// Upstream connector: every way of failing to reach an origin ends in a page with a reason.
#include "gateway/upstream.hpp"

#include <algorithm>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>

#include "gateway/log.hpp"
#include "tls/contexts.hpp"

namespace vigil::gateway {
namespace {

PageInfo unreachable(Gateway& gw, int status, std::string code, std::string reason, const Authority& a) {
    bump(status == 504 ? gw.counters.upstream_timeout : gw.counters.upstream_unreachable);
    return {status, "The site could not be reached", std::move(reason), a.host_port(), std::move(code)};
}

bool is_own_listener(const Gateway& gw, const tcp::endpoint& ep) {
    for (const auto& l : gw.listen_endpoints) {
        if (ep.port() != l.port()) continue;
        if (ep.address() == l.address() || l.address().is_unspecified()) return true;
        if (ep.address().is_loopback() && l.address().is_loopback()) return true;
    }
    return false;
}

// Resolves and filters the origin's addresses; a page when none may be used.
net::awaitable<std::optional<PageInfo>> resolve(Gateway& gw, const Authority& a, std::vector<tcp::endpoint>& eps) {
    using namespace net::experimental::awaitable_operators;
    boost::system::error_code parse_ec;
    auto literal = net::ip::make_address(a.host, parse_ec);
    if (!parse_ec) {
        eps.emplace_back(literal, a.port);
    } else if (auto mapped = gw.hosts.lookup(a.host)) {
        eps.emplace_back(*mapped, a.port);
    } else {
        auto exec = co_await net::this_coro::executor;
        tcp::resolver resolver(exec);
        net::steady_timer timer(exec, gw.cfg.connect);
        const std::string service = std::to_string(a.port);
        auto res = co_await (resolver.async_resolve(a.host, service, use_nothrow) ||
                             timer.async_wait(use_nothrow));
        if (res.index() == 1)
            co_return unreachable(gw, 504, "dns_timeout", "looking up the name " + a.host + " timed out", a);
        auto [ec, results] = std::get<0>(res);
        if (ec)
            co_return unreachable(gw, 502, "dns_failure",
                                  "the name " + a.host + " could not be resolved (" + ec.message() + ")", a);
        for (const auto& r : results) eps.push_back(r.endpoint());
    }
    std::erase_if(eps, [&](const tcp::endpoint& ep) { return is_own_listener(gw, ep); });
    if (eps.empty()) {
        bump(gw.counters.loop_denied);
        co_return PageInfo{508, "Request loop refused", "the destination is this gateway itself", a.host_port(),
                           "loop_detected"};
    }
    if (!gw.cfg.allow_private_destinations) {
        std::erase_if(eps, [](const tcp::endpoint& ep) { return is_non_public(ep.address()); });
        if (eps.empty()) {
            bump(gw.counters.private_denied);
            co_return PageInfo{403, "Destination not allowed",
                               "the destination resolves to a private, loopback or link-local address, which this "
                               "gateway does not connect to",
                               a.host_port(), "private_destination"};
        }
    }
    co_return std::nullopt;
}

}  // namespace

net::awaitable<std::optional<PageInfo>> connect_tcp(Gateway& gw, const Authority& origin,
                                                   std::optional<beast::tcp_stream>& out, uint64_t cid) {
    std::vector<tcp::endpoint> eps;
    if (auto refused = co_await resolve(gw, origin, eps)) co_return refused;
    out.emplace(co_await net::this_coro::executor);
    out->expires_after(gw.cfg.connect);
    auto [ec, ep] = co_await out->async_connect(eps, use_nothrow);
    if (ec) {
        out.reset();
        if (ec == beast::error::timeout)
            co_return unreachable(gw, 504, "connect_timeout", "connecting to the origin server timed out", origin);
        if (ec == net::error::connection_refused)
            co_return unreachable(gw, 502, "connection_refused", "the origin server refused the connection", origin);
        co_return unreachable(gw, 502, "connect_failed", "connecting to the origin server failed: " + ec.message(),
                              origin);
    }
    out->socket().set_option(tcp::no_delay(true), ec);
    log_debug("connected to " + origin.host_port() + " at " + ep.address().to_string(), cid);
    co_return std::nullopt;
}

bool warnable_certificate_problem(const Gateway& gw, const PageInfo& failure) {
    const auto& warn = gw.cfg.origin_error_warn;
    return failure.status == 502 && std::find(warn.begin(), warn.end(), failure.code) != warn.end();
}

namespace {

// What this connection may accept, and who said so.
tls::OriginAcceptance origin_acceptance(Gateway& gw, const std::string& client, const std::string& host,
                                        std::string& who) {
    tls::OriginAcceptance acc;
    for (const auto& e : gw.cfg.origin_exceptions)
        if (e.host == host) {
            acc.classes.insert(acc.classes.end(), e.allow.begin(), e.allow.end());
            if (!e.pin_sha256.empty()) acc.pin_sha256 = e.pin_sha256;
            who = "tls.origin_exceptions";
        }
    if (!client.empty() && !gw.cfg.origin_error_warn.empty() && gw.warned.allowed(client, cert_warning_key(host))) {
        acc.classes.insert(acc.classes.end(), gw.cfg.origin_error_warn.begin(), gw.cfg.origin_error_warn.end());
        who += std::string(who.empty() ? "" : " and ") + "the user, who continued past the warning";
    }
    return acc;
}

}  // namespace

net::awaitable<std::optional<PageInfo>> connect_tls(Gateway& gw, const Authority& origin,
                                                   std::optional<TlsStream>& out, uint64_t cid,
                                                   const std::string& client, std::string* accepted) {
    std::optional<beast::tcp_stream> tcp_out;
    if (auto failure = co_await connect_tcp(gw, origin, tcp_out, cid)) co_return failure;
    out.emplace(std::move(*tcp_out), *gw.origin_ctx);
    SSL* ssl = out->native_handle();
    if (!tls::prepare_origin_ssl(ssl, origin.host)) {
        out.reset();
        co_return unreachable(gw, 502, "tls_setup", "could not set up TLS for this host name", origin);
    }
    std::string who;
    tls::set_origin_acceptance(ssl, origin_acceptance(gw, client, origin.host, who));
    out->next_layer().expires_after(gw.cfg.handshake);
    auto [ec] = co_await out->async_handshake(net::ssl::stream_base::client, use_nothrow);
    if (!ec) {
        if (auto problems = tls::accepted_problems(ssl); !problems.empty()) {
            std::string what;
            for (const auto& p : problems) what += (what.empty() ? "" : ",") + p;
            what += " (accepted by " + who + ")";
            log_warn("origin certificate of " + origin.host_port() + " has problems: " + what, cid);
            if (accepted) *accepted = what;
        }
        co_return std::nullopt;
    }
    const long verify = SSL_get_verify_result(ssl);
    const bool rejected = tls::origin_certificate_rejected(ssl);
    const auto verdict = tls::origin_verdict(ssl);
    out.reset();
    if (rejected) {
        bump(gw.counters.upstream_cert_error);
        log_warn("origin certificate rejected for " + origin.host_port() + ": " + verdict.code + " (" + verdict.reason +
                     (verify != X509_V_OK ? std::string("; ") + X509_verify_cert_error_string(verify) : "") + ")",
                 cid);
        co_return PageInfo{502, "The site's certificate could not be trusted", verdict.reason, origin.host_port(),
                           verdict.code};
    }
    if (ec == beast::error::timeout) {
        bump(gw.counters.upstream_timeout);
        co_return PageInfo{504, "The site could not be reached", "the TLS handshake with the origin server timed out",
                           origin.host_port(), "tls_timeout"};
    }
    bump(gw.counters.upstream_tls_failed);
    co_return PageInfo{502, "The site could not be reached",
                       "the TLS handshake with the origin server failed: " + ec.message(), origin.host_port(),
                       "tls_handshake_failed"};
}

}  // namespace vigil::gateway

// The upstream connector: resolving, destination guards, parents, TCP and verified TLS.
#include "upstream/connector.hpp"
#include "upstream/pool.hpp"

#include <algorithm>
#include <ctime>
#include <cerrno>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core/log.hpp"
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tls/ca.hpp"
#include "tls/cert_facts.hpp"
#include "tls/contexts.hpp"
#include "tls/revocation.hpp"

namespace vigil::upstream {
namespace {

// `counted`: false for a parent proxy that failed (parent_down and parent_failovers count
// those; the request may still get through another parent, or direct).
Failure unreachable(Connector& up, Fail code, std::string reason, const Authority& a, bool counted = true) {
    if (counted) return fail(up.counters, code, std::move(reason), a.host_port());
    return Failure{code, std::move(reason), a.host_port()};
}

bool is_own_listener(const Connector& up, const tcp::endpoint& ep) {
    for (const auto& l : up.listen_endpoints) {
        if (ep.port() != l.port()) continue;
        if (ep.address() == l.address() || l.address().is_unspecified()) return true;
        if (ep.address().is_loopback() && l.address().is_loopback()) return true;
    }
    return false;
}

// proxy.allow_private_destinations refused a destination (resolved here, or an address literal
// sent through a parent).
Failure private_destination(Connector& up, const Authority& a) {
    return fail(up.counters, Fail::private_destination,
                "the destination resolves to a private, loopback or link-local address, which this gateway does not "
                "connect to",
                a.host_port());
}

// Resolves and filters the origin's addresses; a page when none may be used.
net::awaitable<std::optional<Failure>> resolve(Connector& up, const Authority& a, std::vector<tcp::endpoint>& eps,
                                               bool parent) {
    using namespace net::experimental::awaitable_operators;
    boost::system::error_code parse_ec;
    auto literal = net::ip::make_address(a.host, parse_ec);
    if (!parse_ec) {
        eps.emplace_back(literal, a.port);
    } else if (auto mapped = up.hosts.lookup(a.host)) {
        eps.emplace_back(*mapped, a.port);
    } else {
        auto exec = co_await net::this_coro::executor;
        tcp::resolver resolver(exec);
        net::steady_timer timer(exec, up.cfg.connect);
        const std::string service = std::to_string(a.port);
        auto res = co_await (resolver.async_resolve(a.host, service, use_nothrow) ||
                             timer.async_wait(use_nothrow));
        if (res.index() == 1)
            co_return unreachable(up, Fail::dns_timeout, "looking up the name " + a.host + " timed out", a, !parent);
        auto [ec, results] = std::get<0>(res);
        if (ec)
            co_return unreachable(up, Fail::dns_failure,
                                  "the name " + a.host + " could not be resolved (" + ec.message() + ")", a, !parent);
        for (const auto& r : results) eps.push_back(r.endpoint());
    }
    std::erase_if(eps, [&](const tcp::endpoint& ep) { return is_own_listener(up, ep); });
    if (eps.empty()) {
        co_return fail(up.counters, Fail::loop_detected, "the destination is this gateway itself", a.host_port());
    }
    if (!up.cfg.allow_private_destinations && !parent) {  // parents are the admin's choice, often private
        std::erase_if(eps, [](const tcp::endpoint& ep) { return is_non_public(ep.address()); });
        if (eps.empty()) {
            co_return private_destination(up, a);
        }
    }
    co_return std::nullopt;
}

// Connects `out` to `origin` — the destination itself, or a parent proxy.
net::awaitable<std::optional<Failure>> connect_to(Connector& up, const Authority& origin,
                                                  std::optional<beast::tcp_stream>& out, uint64_t cid, bool parent) {
    std::vector<tcp::endpoint> eps;
    if (auto refused = co_await resolve(up, origin, eps, parent)) co_return refused;
    out.emplace(co_await net::this_coro::executor);
    out->expires_after(up.cfg.connect);
    const auto started = std::chrono::steady_clock::now();
    auto [ec, ep] = co_await out->async_connect(eps, use_nothrow);
    if (!ec) up.counters.latency.origin_connect.observe(std::chrono::steady_clock::now() - started);
    if (ec) {
        out.reset();
        const std::string what = parent ? "the parent proxy" : "the origin server";
        if (ec == beast::error::timeout)
            co_return unreachable(up, Fail::connect_timeout, "connecting to " + what + " timed out", origin, !parent);
        if (ec == net::error::connection_refused)
            co_return unreachable(up, Fail::connection_refused, what + " refused the connection", origin, !parent);
        co_return unreachable(up, Fail::connect_failed, "connecting to " + what + " failed: " + ec.message(), origin,
                              !parent);
    }
    out->socket().set_option(tcp::no_delay(true), ec);
    log_debug("connected to " + origin.host_port() + " at " + ep.address().to_string(), cid);
    co_return std::nullopt;
}

// Asks the parent for a tunnel to `origin` over `s` (CONNECT). Reads exactly the parent's
// answer head and nothing past it: what follows belongs to the origin. `broken` says the
// parent itself failed (no answer, closed, garbage), as opposed to refusing.
net::awaitable<std::optional<Failure>> open_tunnel(Connector& up, beast::tcp_stream& s, const Authority& origin,
                                                   const ParentProxy& p, bool& broken) {
    using namespace net::experimental::awaitable_operators;
    broken = true;
    const std::string request = "CONNECT " + origin.host_port() + " HTTP/1.1\r\nHost: " + origin.host_port() + "\r\n\r\n";
    s.expires_after(up.cfg.connect);
    auto [wec, wn] = co_await net::async_write(s, net::buffer(request), use_nothrow);
    auto failed = [&](const std::string& why) {
        return Failure{Fail::parent_failed, "parent proxy " + p.name + ": " + why, origin.host_port()};
    };
    if (wec) co_return failed("sending CONNECT failed: " + wec.message());
    std::string head;
    error_code nb;
    s.socket().non_blocking(true, nb);  // the peeks below must never block the worker
    net::steady_timer timer(co_await net::this_coro::executor, up.cfg.connect);
    for (;;) {
        auto ready = co_await (s.socket().async_wait(tcp::socket::wait_read, use_nothrow) || timer.async_wait(use_nothrow));
        if (ready.index() == 1) co_return failed("no answer to CONNECT in time");
        char peek[4096];
        error_code ec;
        const size_t n = s.socket().receive(net::buffer(peek), tcp::socket::message_peek, ec);
        if (ec == net::error::would_block) continue;
        if (ec || n == 0) co_return failed("closed the connection before answering CONNECT");
        const size_t before = head.size();
        head.append(peek, n);
        const size_t end = head.find("\r\n\r\n");
        const size_t take = end == std::string::npos ? n : end + 4 - before;
        head.resize(before + take);
        s.socket().receive(net::buffer(peek, take), 0, ec);  // consume what was peeked, up to the head's end
        if (ec) co_return failed("reading the answer to CONNECT failed: " + ec.message());
        if (end != std::string::npos) break;
        if (head.size() > 16 * 1024) co_return failed("its answer to CONNECT is over 16 KiB");
    }
    const std::string status_line = head.substr(0, head.find("\r\n"));
    if (status_line.size() < 12 || status_line.compare(0, 7, "HTTP/1.") != 0)
        co_return failed("not an HTTP answer to CONNECT");
    broken = false;
    if (status_line.compare(9, 3, "200") == 0) co_return std::nullopt;
    co_return Failure{Fail::parent_refused, "parent proxy " + p.name + " answered \"" + status_line.substr(0, 200) + "\"",
                      origin.host_port()};
}

void note_parent_state(Connector& up, ParentProxy& p, bool is_up, const std::string& why) {
    if (!Parents::set_up(p, is_up)) return;
    if (is_up) {
        log_info("parent proxy " + p.name + " is up again");
    } else {
        count(up.counters.parent_down);
        log_warn("parent proxy " + p.name + " is down: " + why + "; traffic goes to the other parents");
    }
}

}  // namespace

net::awaitable<std::optional<Failure>> connect_tcp(Connector& up, const Authority& origin,
                                                   std::optional<beast::tcp_stream>& out, uint64_t cid, Route* route) {
    if (route) route->lease.reset();
    if (up.parents.empty() || up.parents.goes_direct(origin.host))
        co_return co_await connect_to(up, origin, out, cid, false);
    // The parent resolves names; an address literal is checked here, as it would be direct.
    error_code literal_ec;
    const auto literal = net::ip::make_address(origin.host, literal_ec);
    if (!literal_ec && !up.cfg.allow_private_destinations && is_non_public(literal)) {
        co_return private_destination(up, origin);
    }
    std::string last_error;
    for (ParentProxy* p : up.parents.candidates(origin.host)) {
        const Authority address{p->host, p->port};
        auto failure = co_await connect_to(up, address, out, cid, true);
        bool broken = failure.has_value();
        if (!failure && !(route && route->http)) failure = co_await open_tunnel(up, *out, origin, *p, broken);
        if (!failure) {
            if (route) route->lease = std::make_shared<ParentLease>(*p);
            log_debug("to " + origin.host_port() + " through parent proxy " + p->name, cid);
            co_return std::nullopt;
        }
        out.reset();
        if (!broken) co_return failure;  // the parent works and said no: its answer stands
        last_error = p->name + ": " + failure->detail;
        note_parent_state(up, *p, false, failure->detail);
        count(up.counters.parent_failovers);
    }
    if (up.cfg.parent_direct_fallback) {
        log_warn("no parent proxy reachable (" + last_error + "); going direct (upstream.direct_fallback)", cid);
        co_return co_await connect_to(up, origin, out, cid, false);
    }
    // Counted once for the request, not per parent tried.
    co_return fail(up.counters, Fail::parent_unavailable,
                   "none of the parent proxies could be reached (last: " + last_error + ")", origin.host_port());
}

net::awaitable<void> check_parent(Connector& up, ParentProxy& p) {
    std::optional<beast::tcp_stream> s;
    const Authority address{p.host, p.port};
    auto failure = co_await connect_to(up, address, s, 0, true);
    note_parent_state(up, p, !failure, failure ? failure->detail : "");
}

bool warnable_certificate_problem(const Config& cfg, const Failure& failure) {
    const auto& warn = cfg.origin_error_warn;
    return failure.code == Fail::origin_certificate && std::find(warn.begin(), warn.end(), failure.name()) != warn.end();
}

namespace {

// What this connection may accept, and who said so.
tls::OriginAcceptance origin_acceptance(Connector& up, bool continued, const std::string& host, std::string& who) {
    tls::OriginAcceptance acc;
    for (const auto& e : up.cfg.origin_exceptions)
        if (e.host == host) {
            acc.classes.insert(acc.classes.end(), e.allow.begin(), e.allow.end());
            if (!e.pin_sha256.empty()) acc.pin_sha256 = e.pin_sha256;
            who = "tls.origin_exceptions";
        }
    if (continued && !up.cfg.origin_error_warn.empty()) {
        acc.classes.insert(acc.classes.end(), up.cfg.origin_error_warn.begin(), up.cfg.origin_error_warn.end());
        who += std::string(who.empty() ? "" : " and ") + "the user, who continued past the warning";
    }
    return acc;
}

}  // namespace

namespace {

Failure certificate_refused(Connector& up, const Authority& origin, const std::string& code, const std::string& reason,
                            const std::string& detail, uint64_t cid,
                            std::vector<std::pair<std::string, std::string>> facts = {}) {
    log_warn("origin certificate rejected for " + origin.host_port() + ": " + code + " (" + reason + detail + ")", cid);
    Failure f = fail(up.counters, Fail::origin_certificate, reason, origin.host_port());
    f.subcode = code;
    f.facts = std::move(facts);
    return f;
}

// The missing issuer of a refused chain, from its AIA caIssuers URL, into the pool that every
// origin handshake draws on. "" when it was fetched, else why not. Failures are remembered for
// five minutes so a dead URL costs one timeout, not one per connection.
net::awaitable<std::string> fetch_missing_issuer(Connector& up, std::string url, uint64_t cid) {
    if (auto failed = up.fetch_failures.get(url)) co_return *failed;
    FetchResult got = co_await up.fetcher->fetch(url);
    std::string error = got.error;
    if (got.ok) {
        size_t pooled = 0;
        for (auto& cert : tls::parse_issuer_certs(got.body))
            if (X509_check_ca(cert.get())) {
                up.intermediates.add(cert.get());
                ++pooled;
            }
        if (pooled == 0) error = "the response holds no CA certificate";
    }
    if (error.empty()) {
        count(up.counters.aia_fetched);
        log_info("fetched a missing intermediate certificate from " + url, cid);
    } else {
        count(up.counters.aia_failed);
        log_warn("could not fetch the missing intermediate certificate from " + url + ": " + error, cid);
        up.fetch_failures.put(url, error, std::chrono::system_clock::now() + std::chrono::minutes(5));
    }
    co_return error;
}

// tls.revocation = ocsp, after a handshake that verified: the responder named in the leaf is
// asked unless a staple already answered. A page when the certificate is revoked (or, with
// tls.ocsp_unknown = block, when no answer could be had). A "revoked" this connection accepts
// joins its accepted problems; `note` says when the status could not be learned.
net::awaitable<std::optional<Failure>> check_with_responder(Connector& up, const Authority& origin, SSL* ssl,
                                                             std::string& note, uint64_t cid) {
    STACK_OF(X509)* chain = SSL_get0_verified_chain(ssl);
    if (!chain || sk_X509_num(chain) < 2) co_return std::nullopt;  // a pinned or accepted self-signed leaf
    X509* leaf = sk_X509_value(chain, 0);
    X509* issuer = sk_X509_value(chain, 1);
    X509_STORE* store = SSL_CTX_get_cert_store(SSL_get_SSL_CTX(ssl));
    if (tls::stapled_ocsp_answered(ssl)) co_return std::nullopt;
    const std::string url = tls::aia_url(leaf, NID_ad_OCSP);
    if (url.empty()) co_return std::nullopt;  // no responder to ask (e.g. a short-lived certificate)
    const std::string key = tls::ocsp_cache_key(leaf, issuer);
    std::optional<tls::OcspAnswer> answer;
    if (!key.empty()) answer = up.ocsp_answers.get(key);
    if (!answer) {
        count(up.counters.ocsp_queries);
        std::string request = tls::ocsp_request(leaf, issuer);
        std::string type = "application/ocsp-request";
        FetchResult got = co_await up.fetcher->fetch(url, std::move(request), std::move(type));
        const auto now = std::chrono::system_clock::now();
        auto until = now + std::chrono::minutes(5);  // how long a failure is remembered
        if (!got.ok) {
            answer = tls::OcspAnswer{tls::OcspAnswer::unknown, "the OCSP responder " + url + " could not be asked: " + got.error};
        } else {
            answer = tls::check_ocsp_response(got.body, chain, store, leaf, issuer);
            if (answer->status == tls::OcspAnswer::good || answer->status == tls::OcspAnswer::revoked) {
                // Until the response's nextUpdate, at most a day (an hour when it names none).
                until = now + (answer->next_update ? std::chrono::hours(24) : std::chrono::hours(1));
                if (answer->next_update)
                    until = std::min(until, std::chrono::system_clock::from_time_t(answer->next_update));
            }
        }
        if (!key.empty()) up.ocsp_answers.put(key, *answer, until);
    }
    if (answer->status == tls::OcspAnswer::revoked) {
        if (tls::accept_origin_problem(ssl, "revoked")) co_return std::nullopt;
        co_return certificate_refused(up, origin, "revoked",
                                      "the origin's certificate has been revoked (its authority's OCSP responder says so)",
                                      "", cid, tls::certificate_facts(tls::origin_leaf(ssl)));
    }
    if (answer->status == tls::OcspAnswer::good) co_return std::nullopt;
    count(up.counters.ocsp_unknown);
    if (up.cfg.ocsp_unknown_blocks)
        co_return certificate_refused(up, origin, "revocation_unknown",
                                      "whether the origin's certificate has been revoked could not be learned: " +
                                          answer->detail,
                                      "", cid);
    log_warn("revocation status of " + origin.host_port() + " unknown, allowed (tls.ocsp_unknown = allow): " +
                 answer->detail,
             cid);
    note = "revocation unknown: " + answer->detail;
    co_return std::nullopt;
}

// Why an origin's TLS handshake failed, in words a person can act on (never OpenSSL's text).
std::string handshake_failure_words(const error_code& ec) {
    if (ec == net::ssl::error::stream_truncated || ec == net::error::eof || ec == net::error::connection_reset)
        return "the site's server closed the connection while the secure connection was being set up";
    if (ec.category() == net::error::get_ssl_category()) {
        const unsigned long e = static_cast<unsigned long>(ec.value());
        if (ERR_GET_LIB(e) == ERR_LIB_ASN1 || ERR_GET_LIB(e) == ERR_LIB_X509)
            return "the site sent a certificate that cannot be read (it is not a well-formed certificate)";
        switch (ERR_GET_REASON(e)) {
            case SSL_R_EXCESSIVE_MESSAGE_SIZE:
                return "the site sent more certificate data than the gateway accepts (64 KiB): an oversized "
                       "certificate or chain";
            case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
            case SSL_R_NO_SHARED_CIPHER:
            case SSL_R_UNSUPPORTED_PROTOCOL:
            case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
            case SSL_R_WRONG_VERSION_NUMBER:
                return "the site's server and the gateway could not agree on a secure connection: the site offers "
                       "only an old TLS version or cipher, or a certificate whose key is too weak (such as DSA or "
                       "P-192), none of which is considered safe any more";
            default: break;
        }
    }
    return "the secure connection to the site could not be set up (the site's server did not complete it)";
}

// A handshake that verified: the responder is asked (tls.revocation = ocsp), and what was
// accepted despite problems, and by whom, is said in `accepted` (for the audit record).
net::awaitable<std::optional<Failure>> after_handshake(Connector& up, const Authority& origin, SSL* ssl,
                                                       const std::string& who, std::string* accepted, uint64_t cid) {
    if (SSL_session_reused(ssl)) count(up.counters.origin_resumed);
    std::string note;
    if (up.cfg.revocation == tls::Revocation::ocsp && up.fetcher) {
        if (auto refused = co_await check_with_responder(up, origin, ssl, note, cid)) co_return refused;
    }
    std::string what;
    for (const auto& p : tls::accepted_problems(ssl)) what += (what.empty() ? "" : ",") + p;
    if (!note.empty()) what = what.empty() ? "ok (" + note + ")" : what + " (" + note + ")";
    if (!what.empty() && what.rfind("ok (", 0) != 0) {
        what += " (accepted by " + who + ")";
        log_warn("origin certificate of " + origin.host_port() + " has problems: " + what, cid);
    }
    if (accepted) *accepted = what;
    co_return std::nullopt;
}

}  // namespace

net::awaitable<std::optional<Failure>> connect_tls(Connector& up, const Authority& origin,
                                                   std::optional<TlsStream>& out, uint64_t cid,
                                                   bool continued, std::string* accepted, Route* route) {
    Route own;
    if (!route) route = &own;
    if (UpstreamPool* pool = UpstreamPool::current()) {
        // A connection another client left, verified cleanly when it was made (see give()).
        if (auto idle = pool->take(origin.host_port(), route->lease)) {
            out = std::move(idle);
            count(up.counters.origin_reused);
            co_return std::nullopt;
        }
    }
    std::string who;
    const tls::OriginAcceptance acceptance = origin_acceptance(up, continued, origin.host, who);
    std::vector<std::string> fetched;  // AIA URLs tried for this connection
    std::string fetch_note;
    for (;;) {
        std::optional<beast::tcp_stream> tcp_out;
        if (auto failure = co_await connect_tcp(up, origin, tcp_out, cid, route)) co_return failure;
        out.emplace(std::move(*tcp_out), *up.origin_ctx);
        SSL* ssl = out->native_handle();
        if (!tls::prepare_origin_ssl(ssl, origin.host, route->offer_h2)) {
            out.reset();
            co_return unreachable(up, Fail::tls_setup, "could not set up TLS for this host name", origin);
        }
        tls::set_origin_acceptance(ssl, acceptance);
        tls::resume_origin_session(ssl, origin.host_port());
        out->next_layer().expires_after(up.cfg.handshake);
        const auto started = std::chrono::steady_clock::now();
        auto [ec] = co_await out->async_handshake(net::ssl::stream_base::client, use_nothrow);
        if (!ec) {
            up.counters.latency.origin_handshake.observe(std::chrono::steady_clock::now() - started);
            auto refused = co_await after_handshake(up, origin, ssl, who, accepted, cid);
            if (refused) out.reset();
            co_return refused;
        }
        const long verify = SSL_get_verify_result(ssl);
        const bool rejected = tls::origin_certificate_rejected(ssl);
        auto verdict = tls::origin_verdict(ssl);
        const std::string missing = tls::missing_issuer_url(ssl);
        auto facts = rejected ? tls::certificate_facts(tls::origin_leaf(ssl)) : std::vector<std::pair<std::string, std::string>>{};
        out.reset();
        if (rejected) {
            // An incomplete chain that names where its missing issuer is: fetch it, try again.
            if (!missing.empty() && up.fetcher && up.cfg.aia_fetch && fetched.size() < 3 &&
                std::find(fetched.begin(), fetched.end(), missing) == fetched.end()) {
                fetched.push_back(missing);
                std::string error = co_await fetch_missing_issuer(up, missing, cid);
                if (error.empty()) continue;
                fetch_note = " (the missing intermediate certificate could not be fetched from " + missing + ": " + error + ")";
            }
            co_return certificate_refused(up, origin, verdict.code, verdict.reason + fetch_note,
                                          verify != X509_V_OK ? std::string("; ") + X509_verify_cert_error_string(verify)
                                                              : std::string(),
                                          cid, std::move(facts));
        }
        if (ec == beast::error::timeout)
            co_return fail(up.counters, Fail::tls_timeout, "the TLS handshake with the origin server timed out",
                           origin.host_port());
        // The page says it in words; OpenSSL's own (e.g. "sslv3 alert handshake failure") goes to the log.
        log_info("TLS handshake with " + origin.host_port() + " failed: " + ec.message(), cid);
        co_return fail(up.counters, Fail::tls_handshake_failed, handshake_failure_words(ec), origin.host_port());
    }
}

}  // namespace vigil::upstream

// The CONNECT phase: port policy, then the bump — a minted certificate for the client, a verified
// TLS connection to the origin, and the HTTP relay on the decrypted stream.
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>

#include <boost/asio/experimental/awaitable_operators.hpp>

#include "gateway/http_io.hpp"
#include "gateway/inspection.hpp"
#include "gateway/relay.hpp"
#include "gateway/upstream.hpp"
#include "tls/contexts.hpp"

namespace vigil::gateway {
namespace {

// Inside the bump every request must be for the CONNECTed origin: anything else would let a
// client reach one host while the gateway's decisions were made for another.
std::optional<PageInfo> check_bumped_target(const http::request<http::buffer_body>& req, const Authority& origin,
                                            std::string& target) {
    auto raw = req.target();
    if (!raw.empty() && raw.front() == '/') {
        target = std::string(raw);
    } else if (auto url = parse_absolute_url(raw); url && url->scheme == "https") {
        if (url->authority.host != origin.host || url->authority.port != origin.port)
            return PageInfo{421, "Misdirected request", "the request URL names a different host than the tunnel",
                            origin.host_port(), "host_mismatch"};
        target = url->target;
    } else {
        return PageInfo{400, "Bad request", "the request target is not a path", origin.host_port(), "bad_target"};
    }
    if (req.count(http::field::host) != 1)
        return PageInfo{400, "Bad request", "a request needs exactly one Host header", origin.host_port(), "bad_host"};
    auto host = parse_authority(req[http::field::host], uint16_t(443));
    if (!host || host->host != origin.host || host->port != origin.port)
        return PageInfo{421, "Misdirected request", "the Host header names a different host than the tunnel",
                        origin.host_port(), "host_mismatch"};
    return std::nullopt;
}

// bypass_inspection: a blind tunnel to the origin; no certificate is minted, nothing decrypted.
net::awaitable<void> splice(beast::tcp_stream& stream, beast::flat_buffer& buf, const Authority& origin, Gateway& gw,
                            TxAudit& tx, unsigned version, Throttle* throttle, bool established_sent = false) {
    using namespace net::experimental::awaitable_operators;
    const uint64_t cid = tx.rec().conn_id;
    std::optional<beast::tcp_stream> up;
    Route route;  // holds the count at a parent proxy while the tunnel lasts
    if (auto failure = co_await connect_tcp(gw, origin, up, cid, &route)) {
        co_await write_page(stream, gw, *failure, version, &tx);
        co_return;
    }
    if (!established_sent) {
        static const std::string established = "HTTP/1.1 200 Connection established\r\n\r\n";
        stream.expires_after(gw.cfg.io);
        auto [ec, n] = co_await net::async_write(stream, net::buffer(established), use_nothrow);
        bump(gw.counters.bytes_out, n);
        if (ec) co_return;
    }
    bump(gw.counters.spliced);
    tx.rec().status = 200;
    log_info("spliced (not inspected) " + origin.host_port(), cid);
    if (buf.size()) {
        auto [e2, m] = co_await net::async_write(*up, buf.data(), use_nothrow);
        if (e2) co_return;
        tx.rec().bytes_from_client += static_cast<int64_t>(m);
        buf.clear();
    }
    std::atomic<uint64_t> from_client{0}, to_client{0};
    co_await (pump(stream, *up, gw, from_client, throttle, Throttle::from_client) ||
              pump(*up, stream, gw, to_client, throttle, Throttle::to_client));
    bump(gw.counters.bytes_in, from_client);
    bump(gw.counters.bytes_out, to_client);
    tx.rec().bytes_from_client += static_cast<int64_t>(from_client.load());
    tx.rec().bytes_to_client += static_cast<int64_t>(to_client.load());
}

std::string tls_params(SSL* ssl) {
    const SSL_CIPHER* c = SSL_get_current_cipher(ssl);
    return std::string(SSL_get_version(ssl)) + " " + (c ? SSL_CIPHER_get_name(c) : "");
}

}  // namespace

namespace {

// A bumped tunnel: the client's TLS connection, established, and what the CONNECT decided.
struct BumpedTunnel {
    TlsStream client;
    Authority origin;
    inspect::Verdict verdict;  // the host-only decision (a block is shown inside TLS)
    std::string site_url;
    std::shared_ptr<TlsMaterial> material;  // kept for this connection's life
};

// The CONNECT phase up to a bumped TLS connection: refusals, splices, non-TLS tunnels and failed
// handshakes end here, with the CONNECT's own record. Its frame is gone once the tunnel serves
// requests (bumped_requests), so an idle bumped connection does not carry it.
net::awaitable<std::optional<BumpedTunnel>> open_tunnel(beast::tcp_stream& stream, beast::flat_buffer& buf,
                                                        std::unique_ptr<RequestParser> connect, Gateway& gw,
                                                        SessionTrack& track, audit::Record& base) {
    bump(gw.counters.connect);
    const uint64_t cid = base.conn_id;
    const unsigned version = connect->get().version();
    auto origin = parse_authority(connect->get().target(), std::nullopt);
    // The CONNECT's own record: refusals, splices and TLS failures end here; bumped requests
    // get one record each from the relay.
    audit::Record connect_rec = base;
    connect_rec.method = "CONNECT";
    connect_rec.url = std::string(connect->get().target().substr(0, 2048));
    if (origin) {
        connect_rec.host = origin->host;
        connect_rec.port = origin->port;
    }
    auto tx = std::make_unique<TxAudit>(gw, connect_rec);
    if (!origin) {
        bump(gw.counters.bad_request);
        PageInfo info{400, "Bad request", "CONNECT needs a host:port target",
                      std::string(connect->get().target().substr(0, 200)), "bad_connect"};
        co_await write_page(stream, gw, info, version, tx.get());
        co_return std::nullopt;
    }
    if (!any_contains(gw.cfg.allowed_connect_ports, origin->port)) {
        bump(gw.counters.connect_denied);
        PageInfo info{403, "Port not allowed",
                      "tunnels to port " + std::to_string(origin->port) +
                          " are not allowed by this gateway (proxy.allowed_connect_ports)",
                      origin->host_port(), "port_not_allowed"};
        co_await write_page(stream, gw, info, version, tx.get());
        co_return std::nullopt;
    }
    if (!connect->is_done()) {  // a CONNECT with a body is not something a real client sends
        bump(gw.counters.bad_request);
        PageInfo info{400, "Bad request", "CONNECT with a body", origin->host_port(), "bad_connect"};
        co_await write_page(stream, gw, info, version, tx.get());
        co_return std::nullopt;
    }

    // The host-only decision, before anything is decrypted.
    const std::string client_ip = base.client_ip;
    const std::string site_url = full_url("https", *origin, "/");
    inspect::Subject subject{origin->host, site_url, base.user, split_groups(base.group), client_ip};
    inspect::Verdict verdict = gw.rules.load()->check_connect(subject);
    if (verdict.bypass) {
        tx->rec().kind = "splice";
        tx->rec().tls_mode = "splice";
        tx->verdict(verdict);
        co_await splice(stream, buf, *origin, gw, *tx, version, track.throttle);
        co_return std::nullopt;
    }

    std::shared_ptr<TlsMaterial> material = gw.tls.load();  // kept for this connection's life
    std::shared_ptr<const tls::MintedCert> cert;
    try {
        cert = material->certs->get(origin->host);
    } catch (const std::exception& e) {
        log_error("minting a certificate for " + origin->host + " failed: " + e.what(), cid);
    }
    if (!cert) {
        PageInfo info{500, "Internal error", "the gateway could not create a certificate", origin->host_port(),
                      "mint_failed"};
        co_await write_page(stream, gw, info, version, tx.get());
        co_return std::nullopt;
    }

    static const std::string established = "HTTP/1.1 200 Connection established\r\n\r\n";
    stream.expires_after(gw.cfg.io);
    auto [wec, wn] = co_await net::async_write(stream, net::buffer(established), use_nothrow);
    bump(gw.counters.bytes_out, wn);
    if (wec) co_return std::nullopt;

    // What follows must be a TLS handshake record (0x16). Anything else is another protocol
    // inside the tunnel: refused by default, or relayed blind with tls.non_tls = "tunnel".
    // One deadline for the whole client handshake, ClientHello included: a client sending it a
    // byte at a time cannot stretch it.
    const auto handshake_deadline = std::chrono::steady_clock::now() + gw.cfg.handshake;
    if (buf.size() == 0) {
        stream.expires_at(handshake_deadline);
        auto [rec, rn] = co_await stream.async_read_some(buf.prepare(16 * 1024), use_nothrow);
        if (rec) co_return std::nullopt;
        buf.commit(rn);
        bump(gw.counters.bytes_in, rn);
    }
    if (static_cast<const unsigned char*>(buf.data().data())[0] != 0x16) {
        bump(gw.counters.non_tls);
        tx->rec().tls_mode = "none";
        if (gw.cfg.non_tls_tunnel) {
            tx->rec().kind = "splice";
            tx->rec().reason = "non_tls: not TLS after CONNECT; tunnelled (tls.non_tls = tunnel)";
            co_await splice(stream, buf, *origin, gw, *tx, version, track.throttle, true);
            tx->rec().action = "bypass";
        } else {
            tx->rec().kind = "refused";
            tx->rec().action = "refuse";
            tx->rec().reason = "non_tls: the client sent something other than TLS after CONNECT";
            log_info("non-TLS bytes after CONNECT " + origin->host_port() + "; closed (tls.non_tls = reject)", cid);
        }
        co_return std::nullopt;
    }

    TlsStream client(std::move(stream), *gw.client_ctx);
    track.stream = &lowest(client);
    SSL* ssl = client.native_handle();
    if (SSL_use_cert_and_key(ssl, cert->leaf.get(), material->minter->leaf_key(), material->chain.get(), 1) != 1) {
        log_error("cannot install the minted certificate: " + tls::last_openssl_error(), cid);
        co_return std::nullopt;
    }
    tls::expect_sni(ssl, origin->host);
    lowest(client).expires_at(handshake_deadline);
    auto [hec, used] = co_await client.async_handshake(net::ssl::stream_base::server, buf.data(), use_nothrow);
    if (hec) {
        tx->rec().kind = "refused";
        tx->rec().tls_mode = "bump";
        tx->rec().action = "refuse";
        if (tls::sni_was_refused(ssl)) {
            bump(gw.counters.sni_mismatch);
            log_warn("TLS SNI does not match CONNECT " + origin->host_port() + "; refused", cid);
            const char* sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
            tx->rec().sni = sni ? sni : "";
            tx->rec().reason = "sni_mismatch: the TLS SNI names a different host than the CONNECT";
        } else {
            bump(gw.counters.client_tls_failed);
            log_info("client TLS handshake for " + origin->host_port() + " failed: " + hec.message(), cid);
            tx->rec().reason = "client_tls_failed: " + hec.message();
        }
        co_return std::nullopt;
    }
    buf.consume(used);
    bump(gw.counters.bumped);
    tx->cancel();  // from here on, each request inside the tunnel has its own record
    tx.reset();
    base.tls_mode = "bump";
    if (const char* sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)) base.sni = sni;
    base.client_tls = tls_params(ssl);
    co_return BumpedTunnel{std::move(client), *origin, std::move(verdict), site_url, std::move(material)};
}

// Pages answered inside the tunnel, each with its own record. Coroutines of their own: the
// record (a kilobyte) lives in their short frames, not in the tunnel's, which lasts as long as
// the connection, idle or not.
net::awaitable<void> refused_head(TlsStream& client, Gateway& gw, const audit::Record& base, const Authority& origin,
                                  const Rejection& rejection) {
    TxAudit tx(gw, base);
    tx.rec().host = origin.host;
    tx.rec().port = origin.port;
    PageInfo info{rejection.status, rejection_title(rejection.status), rejection.reason, origin.host_port(),
                  rejection_code(rejection.status), base.conn_id};
    co_await write_page(client, gw, info, 11, &tx);
}

net::awaitable<void> refused_request(TlsStream& client, Gateway& gw, const audit::Record& base, const Authority& origin,
                                     const http::request<http::buffer_body>& req, const PageInfo& page,
                                     const inspect::Verdict* verdict) {
    TxAudit tx(gw, base);
    tx.rec().method = std::string(req.method_string());
    tx.rec().scheme = "https";
    tx.rec().host = origin.host;
    tx.rec().port = origin.port;
    tx.rec().url = full_url("https", origin, std::string(req.target()));
    if (verdict) tx.verdict(*verdict);
    co_await write_page(client, gw, page, req.version(), &tx);
}

// The bumped request loop: connects to the origin (or shows why not, inside TLS), then relays
// each request of the tunnel as its own transaction.
net::awaitable<void> bumped_requests(BumpedTunnel& tunnel, beast::flat_buffer& buf, Gateway& gw, SessionTrack& track,
                                     audit::Record& base) {
    TlsStream& client = tunnel.client;
    const Authority* origin = &tunnel.origin;
    const inspect::Verdict& verdict = tunnel.verdict;
    const std::string& site_url = tunnel.site_url;
    const uint64_t cid = base.conn_id;
    const std::string client_ip = base.client_ip;

    auto connect_origin = [&gw, cid, client_ip](const Authority& a, std::optional<TlsStream>& up, Route& route) {
        return connect_tls(gw, a, up, cid, client_ip, nullptr, &route);
    };
    HttpRelay<TlsStream, TlsStream> relay(gw, client, buf, cid, client_ip, connect_origin);
    relay.set_throttle(track.throttle);
    std::optional<PageInfo> origin_failure;
    bool cert_warning = false;  // origin_failure is a warning the user may continue past
    PageInfo cert_problem;      // then: the certificate problem itself
    // The warning for `url`: its Continue link returns to that URL and accepts the problem.
    auto cert_warning_page = [&](const std::string& url) {
        inspect::Verdict v;
        v.action = inspect::Action::warn;
        v.rule = "origin-certificate";
        v.reason = cert_problem.reason;
        PageInfo w = warn_page(gw, v, url, client_ip, cert_warning_key(origin->host), cid);
        w.title = "This site's certificate has a problem";
        w.reason = cert_problem.reason + " (" + cert_problem.code +
                   "). Continue only if you trust this site; the decision is recorded.";
        return w;
    };
    // Connects to the origin; a certificate problem that tls.origin_errors sets to "warn"
    // becomes a warning page whose Continue link accepts it for this client and host.
    auto connect_and_adopt = [&]() -> net::awaitable<void> {
        std::optional<TlsStream> upstream;
        std::string accepted;
        Route route;
        origin_failure = co_await connect_tls(gw, *origin, upstream, cid, client_ip, &accepted, &route);
        cert_warning = false;
        if (!origin_failure) {
            base.origin_cert = accepted.empty() ? "ok" : accepted;
            base.origin_tls = tls_params(upstream->native_handle());
            relay.adopt(std::move(upstream), *origin, std::move(route));
        } else {
            base.origin_cert = origin_failure->code;
            if (warnable_certificate_problem(gw, *origin_failure)) {
                cert_problem = *origin_failure;
                origin_failure = cert_warning_page(site_url);
                cert_warning = true;
            }
        }
        relay.audit_base() = base;
    };
    if (verdict.action == inspect::Action::block) {
        // Blocked by host: the client still gets a readable HTTPS page, and the origin is never contacted.
        bump(gw.counters.blocked);
        origin_failure = block_page(verdict, site_url, cid);
        relay.audit_base() = base;
    } else {
        co_await connect_and_adopt();
    }

    // The origin connection may serve the next client connection of this worker — only when its
    // chain verified cleanly (nothing an exception, pin or "continue" accepted) and nothing the
    // origin sent waits inside TLS for the next client to read as its own.
    auto pool_upstream = [&](std::optional<TlsStream> idle, std::string key, std::shared_ptr<ParentLease> lease) {
        UpstreamPool* pool = UpstreamPool::current();
        if (!idle || !pool || gw.stopping) return;
        SSL* up = idle->native_handle();
        if (tls::accepted_problems(up).empty() && !SSL_has_pending(up) && BIO_ctrl_pending(SSL_get_rbio(up)) == 0)
            pool->give(key, std::move(*idle), std::move(lease));
    };
    auto park = [&] {
        std::string key;
        std::shared_ptr<ParentLease> lease;
        auto idle = relay.park(key, lease);
        pool_upstream(std::move(idle), std::move(key), std::move(lease));
        client.release_idle_buffers();
    };
    for (bool first = true;; first = false) {
        if (gw.stopping && !first && buf.size() == 0) break;
        track.idle = buf.size() == 0;
        auto head = co_await next_request_head(client, buf, gw, first, park);
        track.idle = false;
        if (head.status == HeadRead::closed || head.status == HeadRead::idle) break;
        if (head.status == HeadRead::rejected) {
            if (head.rejection.status != 408) bump(gw.counters.bad_request);
            co_await refused_head(client, gw, base, *origin, head.rejection);
            break;
        }
        bump(gw.counters.requests);
        // The origin's certificate failed (or it was unreachable), or the host is blocked: say so
        // on the first request, inside TLS, so the browser shows it.
        std::string target;
        if (cert_warning) {
            // "Continue" on the certificate warning: a valid link records the user's decision
            // (for warn_duration) and the origin is contacted again, accepting those problems.
            std::string t(head.parser->get().target());
            if (auto cont = take_continue_token(gw, t, client_ip, cert_warning_key(origin->host)); cont && *cont) {
                log_info("user continued past the certificate warning for " + origin->host_port(), cid);
                head.parser->get().target(t);
                co_await connect_and_adopt();
            }
            if (cert_warning) origin_failure = cert_warning_page(full_url("https", *origin, t));
        }
        std::optional<PageInfo> refused = origin_failure;
        if (!refused) refused = check_bumped_target(head.parser->get(), *origin, target);
        if (refused) {
            refused->conn_id = cid;
            if (!origin_failure) bump(gw.counters.bad_request);
            co_await refused_request(client, gw, base, *origin, head.parser->get(), *refused,
                                     verdict.action == inspect::Action::block ? &verdict : nullptr);
            break;
        }
        if (!co_await relay.transaction(*head.parser, *origin, target, true)) break;
    }
    {
        std::string key;
        std::shared_ptr<ParentLease> lease;
        auto idle = relay.release_idle_upstream(key, lease);
        pool_upstream(std::move(idle), std::move(key), std::move(lease));
    }
    // close_notify, so clients can tell a finished connection from a truncated one.
    lowest(client).expires_after(std::chrono::seconds(2));
    co_await client.async_shutdown(use_nothrow);
}

}  // namespace

net::awaitable<void> connect_session(beast::tcp_stream& stream, beast::flat_buffer& buf,
                                     std::unique_ptr<RequestParser> connect, Gateway& gw, SessionTrack& track,
                                     audit::Record& base) {
    auto tunnel = co_await open_tunnel(stream, buf, std::move(connect), gw, track, base);
    if (tunnel) co_await bumped_requests(*tunnel, buf, gw, track, base);
}

}  // namespace vigil::gateway

// The CONNECT phase: port policy and the host-only decision, then a splice (bypass) or the bump
// up to an established TLS connection with the client under a minted certificate.
#include <boost/beast/core.hpp>

#include <boost/asio/experimental/awaitable_operators.hpp>

#include "session/policy.hpp"
#include "session/request_loop.hpp"
#include "session/tunnel.hpp"
#include "tls/contexts.hpp"

namespace vigil::session {

std::string tls_params(SSL* ssl) {
    const SSL_CIPHER* c = SSL_get_current_cipher(ssl);
    return std::string(SSL_get_version(ssl)) + " " + (c ? SSL_CIPHER_get_name(c) : "");
}

namespace {

const std::string kEstablished = "HTTP/1.1 200 Connection established\r\n\r\n";

// bypass_inspection: a blind tunnel to the origin; no certificate is minted, nothing decrypted.
net::awaitable<void> splice(beast::tcp_stream& stream, beast::flat_buffer& buf, const Authority& origin, Services& sv,
                            TxAudit& tx, unsigned version, Throttle* throttle, bool established_sent = false) {
    using namespace net::experimental::awaitable_operators;
    const uint64_t cid = tx.rec().conn_id;
    std::optional<beast::tcp_stream> up;
    Route route;  // holds the count at a parent proxy while the tunnel lasts
    if (auto failure = co_await upstream::connect_tcp(sv.upstream, origin, up, cid, &route)) {
        const PageInfo page = page_for(*failure, cid);
        co_await send_page(stream, sv.wire, page, version, &tx);
        co_return;
    }
    if (!established_sent) {
        stream.expires_after(sv.cfg.io);
        auto [ec, n] = co_await net::async_write(stream, net::buffer(kEstablished), use_nothrow);
        count(sv.counters.bytes_out, n);
        if (ec) co_return;
    }
    count(sv.counters.spliced);
    tx.rec().status = 200;
    log_info("spliced (not inspected) " + origin.host_port(), cid);
    if (buf.size()) {
        auto [e2, m] = co_await net::async_write(*up, buf.data(), use_nothrow);
        if (e2) co_return;
        tx.rec().bytes_from_client += static_cast<int64_t>(m);
        buf.clear();
    }
    std::atomic<uint64_t> from_client{0}, to_client{0};
    co_await (pump(stream, *up, sv.wire, from_client, throttle, Throttle::from_client) ||
              pump(*up, stream, sv.wire, to_client, throttle, Throttle::to_client));
    count(sv.counters.bytes_in, from_client);
    count(sv.counters.bytes_out, to_client);
    tx.rec().bytes_from_client += static_cast<int64_t>(from_client.load());
    tx.rec().bytes_to_client += static_cast<int64_t>(to_client.load());
}

audit::Record connect_record(const audit::Record& base, const RequestParser& connect,
                             const std::optional<Authority>& origin) {
    audit::Record r = base;
    r.method = "CONNECT";
    r.url = std::string(connect.get().target().substr(0, 2048));
    if (origin) {
        r.host = origin->host;
        r.port = origin->port;
    }
    return r;
}

// What the CONNECT may not do, before anything is decided: a target that is no host:port, a
// port not allowed, a body.
std::optional<Failure> check_connect(Services& sv, const RequestParser& connect, const std::optional<Authority>& origin) {
    if (!origin)
        return fail(sv.counters, Fail::bad_connect, "CONNECT needs a host:port target",
                    std::string(connect.get().target().substr(0, 200)));
    if (!any_contains(sv.cfg.allowed_connect_ports, origin->port))
        return fail(sv.counters, Fail::port_not_allowed,
                    "tunnels to port " + std::to_string(origin->port) +
                        " are not allowed by this gateway (proxy.allowed_connect_ports)",
                    origin->host_port());
    if (!connect.is_done())  // a CONNECT with a body is not something a real client sends
        return fail(sv.counters, Fail::bad_connect, "CONNECT with a body", origin->host_port());
    return std::nullopt;
}

// Not TLS after CONNECT: another protocol inside the tunnel, refused by default or relayed
// blind with tls.non_tls = "tunnel".
net::awaitable<void> not_tls(beast::tcp_stream& stream, beast::flat_buffer& buf, const Authority& origin,
                             Services& sv, TxAudit& tx, unsigned version, Throttle* throttle) {
    count(sv.counters.non_tls);
    tx.rec().tls_mode = "none";
    if (sv.cfg.non_tls_tunnel) {
        tx.rec().kind = "splice";
        tx.rec().reason = "non_tls: not TLS after CONNECT; tunnelled (tls.non_tls = tunnel)";
        co_await splice(stream, buf, origin, sv, tx, version, throttle, true);
        tx.rec().action = "bypass";
    } else {
        tx.rec().kind = "refused";
        tx.rec().action = "refuse";
        tx.rec().reason = "non_tls: the client sent something other than TLS after CONNECT";
        log_info("non-TLS bytes after CONNECT " + origin.host_port() + "; closed (tls.non_tls = reject)",
                 tx.rec().conn_id);
    }
}

// The leaf for `host`, from the cache or minted now; null (and logged) when minting failed.
std::shared_ptr<const tls::MintedCert> mint(TlsMaterial& material, const std::string& host, uint64_t cid) {
    try {
        return material.certs->get(host);
    } catch (const std::exception& e) {
        log_error("minting a certificate for " + host + " failed: " + e.what(), cid);
        return nullptr;
    }
}

// The first bytes after "200 Connection established", within the handshake's deadline.
net::awaitable<bool> read_first_bytes(beast::tcp_stream& stream, beast::flat_buffer& buf, Counters& counters,
                                      std::chrono::steady_clock::time_point deadline) {
    stream.expires_at(deadline);
    auto [ec, n] = co_await stream.async_read_some(buf.prepare(16 * 1024), use_nothrow);
    if (ec) co_return false;
    buf.commit(n);
    count(counters.bytes_in, n);
    co_return true;
}

// The minted leaf (with the issuing chain) for the client handshake, which must name `host`.
bool install_leaf(SSL* ssl, const tls::MintedCert& cert, const TlsMaterial& material, const std::string& host,
                  uint64_t cid) {
    if (SSL_use_cert_and_key(ssl, cert.leaf.get(), material.minter->leaf_key(), material.chain.get(), 1) != 1) {
        log_error("cannot install the minted certificate: " + tls::last_openssl_error(), cid);
        return false;
    }
    tls::expect_sni(ssl, host);
    return true;
}

// The client's handshake failed: the SNI named another host, or TLS itself failed.
void handshake_failed(Services& sv, TxAudit& tx, SSL* ssl, const Authority& origin, const error_code& ec) {
    const uint64_t cid = tx.rec().conn_id;
    tx.rec().kind = "refused";
    tx.rec().tls_mode = "bump";
    tx.rec().action = "refuse";
    if (tls::sni_was_refused(ssl)) {
        count(sv.counters.sni_mismatch);
        log_warn("TLS SNI does not match CONNECT " + origin.host_port() + "; refused", cid);
        const char* sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
        tx.rec().sni = sni ? sni : "";
        tx.rec().reason = "sni_mismatch: the TLS SNI names a different host than the CONNECT";
    } else {
        count(sv.counters.client_tls_failed);
        log_info("client TLS handshake for " + origin.host_port() + " failed: " + ec.message(), cid);
        tx.rec().reason = "client_tls_failed: " + ec.message();
    }
}

// The CONNECT phase up to a bumped TLS connection: refusals, splices, non-TLS tunnels and failed
// handshakes end here, with the CONNECT's own record. Its frame is gone once the tunnel serves
// requests (bumped_requests), so an idle bumped connection does not carry it.
net::awaitable<std::optional<BumpedTunnel>> open_tunnel(beast::tcp_stream& stream, beast::flat_buffer& buf,
                                                        std::unique_ptr<RequestParser> connect, Services& sv,
                                                        SessionTrack& track, audit::Record& base) {
    count(sv.counters.connect);
    const uint64_t cid = base.conn_id;
    const unsigned version = connect->get().version();
    auto origin = parse_authority(connect->get().target(), std::nullopt);
    // The CONNECT's own record: refusals, splices and TLS failures end here; bumped requests
    // get one record each from the relay.
    auto tx = std::make_unique<TxAudit>(sv.audit, connect_record(base, *connect, origin));
    if (auto refused = check_connect(sv, *connect, origin)) {
        const PageInfo page = page_for(*refused, cid);
        co_await send_page(stream, sv.wire, page, version, tx.get());
        co_return std::nullopt;
    }

    // The host-only decision, before anything is decrypted.
    const std::string site_url = full_url("https", *origin, "/");
    inspect::Subject subject{origin->host, site_url, base.user, split_groups(base.group), base.client_ip};
    inspect::Verdict verdict = sv.policy.rules.load()->check_connect(subject);
    if (verdict.bypass) {
        tx->rec().kind = "splice";
        tx->rec().tls_mode = "splice";
        tx->verdict(verdict);
        co_await splice(stream, buf, *origin, sv, *tx, version, track.throttle);
        co_return std::nullopt;
    }

    std::shared_ptr<TlsMaterial> material = sv.certs.material.load();  // kept for this connection's life
    std::shared_ptr<const tls::MintedCert> cert = mint(*material, origin->host, cid);
    if (!cert) {
        const PageInfo page =
            page_for(Failure{Fail::mint_failed, "the gateway could not create a certificate", origin->host_port()}, cid);
        co_await send_page(stream, sv.wire, page, version, tx.get());
        co_return std::nullopt;
    }

    stream.expires_after(sv.cfg.io);
    auto [wec, wn] = co_await net::async_write(stream, net::buffer(kEstablished), use_nothrow);
    count(sv.counters.bytes_out, wn);
    if (wec) co_return std::nullopt;

    // What follows must be a TLS handshake record (0x16). One deadline for the whole client
    // handshake, ClientHello included: a client sending it a byte at a time cannot stretch it.
    const auto handshake_deadline = std::chrono::steady_clock::now() + sv.cfg.handshake;
    if (buf.size() == 0 && !co_await read_first_bytes(stream, buf, sv.counters, handshake_deadline))
        co_return std::nullopt;
    if (static_cast<const unsigned char*>(buf.data().data())[0] != 0x16) {
        co_await not_tls(stream, buf, *origin, sv, *tx, version, track.throttle);
        co_return std::nullopt;
    }
    TlsStream client(std::move(stream), *sv.certs.client_ctx);
    track.stream = &lowest(client);
    SSL* ssl = client.native_handle();
    if (!install_leaf(ssl, *cert, *material, origin->host, cid)) co_return std::nullopt;
    lowest(client).expires_at(handshake_deadline);
    const auto handshake_started = std::chrono::steady_clock::now();
    auto [hec, used] = co_await client.async_handshake(net::ssl::stream_base::server, buf.data(), use_nothrow);
    if (hec) {
        handshake_failed(sv, *tx, ssl, *origin, hec);
        co_return std::nullopt;
    }
    sv.counters.latency.client_handshake.observe(std::chrono::steady_clock::now() - handshake_started);
    buf.consume(used);
    count(sv.counters.bumped);
    tx->cancel();  // from here on, each request inside the tunnel has its own record
    tx.reset();
    base.tls_mode = "bump";
    if (const char* sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)) base.sni = sni;
    base.client_tls = tls_params(ssl);
    co_return BumpedTunnel{std::move(client), *origin, std::move(verdict), site_url, std::move(material)};
}

}  // namespace

net::awaitable<void> connect_session(beast::tcp_stream& stream, beast::flat_buffer& buf,
                                     std::unique_ptr<RequestParser> connect, Services& sv, SessionTrack& track,
                                     audit::Record& base) {
    auto tunnel = co_await open_tunnel(stream, buf, std::move(connect), sv, track, base);
    if (!tunnel) co_return;
    if (negotiated_h2(tunnel->client.native_handle())) co_await h2_requests(*tunnel, buf, sv, track, base);
    else co_await bumped_requests(*tunnel, buf, sv, track, base);
}

}  // namespace vigil::session

// HttpRelay's definitions, the origin's side: sending the request (connecting, reusing or
// retrying the origin connection), an upload that failed, a response body that did not
// complete, and a 101 that turns the connection into a byte relay.
#pragma once

#include "session/relay_impl.hpp"

namespace vigil::session {

// A kept-alive origin connection may have been closed by the origin meanwhile: a request
// without a body is retried once on a fresh connection; one with a body is not (not replayable).
template <class Client, class Upstream>
net::awaitable<bool> HttpRelay<Client, Upstream>::exchange_with_origin(Exchange& x) {
    const Config& cfg = sv_.wire.cfg;
    for (int attempt = 0;; ++attempt) {
        bool reused = origin_.reusable_for(x.origin);
        if (!reused) {
            if (auto failure = co_await origin_.connect(x.origin)) co_return co_await refuse(*failure, x.version);
            // A stream on a shared HTTP/2 connection may be refused (REFUSED_STREAM, a GOAWAY
            // below it, HTTP_1_1_REQUIRED) like a kept-alive connection closed: retried once too.
            reused = origin_.multiplexed();
        }
        if (attempt == 0 && x.has_body && iequals(x.expect, "100-continue")) {
            static const std::string cont = "HTTP/1.1 100 Continue\r\n\r\n";
            expire_after(client_, cfg.io);
            auto [ec, n] = co_await net::async_write(client_, net::buffer(cont), use_nothrow);
            count(sv_.wire.counters.bytes_out, n);
            if (ec) co_return false;
        }
        std::unique_ptr<inspect::BodyScanner> req_scan;
        if (x.scan && x.has_body)
            req_scan = x.rules->scan_body(inspect::Target::request_body,
                                          field_list(x.in.base(), http::field::content_encoding));
        // Request bodies are always held up to hold_bytes, so a framing error there reaches no origin.
        // A parent proxy takes the request in absolute-form; an origin in origin-form.
        x.out.target(origin_.route().via_parent() ? full_url(x.scheme, x.origin, x.target) : x.target);
        BodyStall stall{cfg.body_stall, cfg.body_stall_bytes};
        stall.start();
        BodyOptions upload{req_scan.get(), cfg.hold_bytes, &x.tx.rec().bytes_from_client, throttle_};
        upload.stall = &stall;
        const RelayError sent =
            co_await relay_body(client_, cbuf_, x.parser, origin_.stream(), x.out, sv_.wire, upload);
        if (req_scan && sent != RelayError::stalled && sent != RelayError::stalled_before_head)
            x.tx.rec().scan_result = req_scan->scan_result();
        if (req_scan && req_scan->outcome() == inspect::ScanOutcome::unscanned_budget)
            count(sv_.wire.counters.scan_over_budget);
        if (sent != RelayError::none && sent != RelayError::write) co_return co_await upload_failed(x, sent, req_scan.get());
        const bool retry = reused && !x.has_body && attempt == 0;
        if (sent == RelayError::none) {
            std::string error;
            auto got = co_await read_response_head(origin_.stream(), origin_.buffer(), x.rp,
                                                   x.in.method() == http::verb::head, sv_.wire, error);
            if (got == ResponseHead::ok) co_return true;
            if (!(retry && got == ResponseHead::closed_early)) {
                origin_.drop();
                const Failure f = got == ResponseHead::timeout
                                      ? Failure{Fail::upstream_timeout, "the origin server did not send a response in time",
                                                x.origin.host_port()}
                                      : Failure{Fail::upstream_bad_response, error, x.origin.host_port()};
                co_return co_await refuse(f, x.version);
            }
        } else if (!retry) {
            origin_.drop();
            const Failure f{Fail::upstream_closed, "the origin server closed the connection while the request was being sent",
                            x.origin.host_port()};
            co_return co_await refuse(f, x.version);
        }
        origin_.drop();  // stale kept-alive connection: retry on a new one
    }
}

// The request body could not be relayed whole: too slow, cut off by the client, not valid
// framing, or blocked by a signature. The origin got nothing, or an incomplete request on a
// connection now closed.
template <class Client, class Upstream>
net::awaitable<bool> HttpRelay<Client, Upstream>::upload_failed(Exchange& x, RelayError sent,
                                                                inspect::BodyScanner* scanner) {
    const Config& cfg = sv_.wire.cfg;
    if (sent == RelayError::read || sent == RelayError::read_before_head) {
        x.tx.abort_transfer(sv_.stopping ? "shutdown" : "client_gone",
                            "the client's connection ended during its request body");
        co_return false;
    }
    origin_.drop();
    if (sent == RelayError::stalled || sent == RelayError::stalled_before_head) {
        // Too slow to be a real upload (or a body that can never complete).
        const Failure f = fail(sv_.wire.counters, Fail::body_timeout,
                               "the request body arrived slower than " + std::to_string(cfg.body_stall_bytes) +
                                   " bytes in " + std::to_string(cfg.body_stall.count()) +
                                   " seconds (timeouts.body_stall)",
                               x.url);
        co_return co_await refuse(f, x.version);
    }
    if (sent == RelayError::blocked_before_head || sent == RelayError::blocked_after_head) {
        x.tx.verdict(scanner->verdict());
        co_return co_await block(scanner->verdict(), x.url, x.version);
    }
    const Failure f = fail(sv_.wire.counters, Fail::bad_request,
                           std::string("the request body is not valid HTTP/1.1 framing") +
                               (sent == RelayError::malformed ? " (the upload was cut off at the origin)" : ""),
                           x.url);
    co_return co_await refuse(f, x.version);
}

// A response body that did not arrive or could not be delivered whole. Nothing sent to the
// client yet (the head was still held): a 502 page. Either way the record says `aborted` with
// the reason and the bytes the client actually got.
template <class Client, class Upstream>
net::awaitable<void> HttpRelay<Client, Upstream>::transfer_failed(RelayError relayed, const error_code& cut,
                                                                  TxAudit& tx, const std::string& url,
                                                                  unsigned version) {
    TransferFailure t = classify_transfer_failure(relayed, cut, sv_.stopping, sv_.wire.counters);
    t.failure.where = url;
    const std::string code = t.failure.name();
    log_info("transfer of " + url + " aborted after " + std::to_string(tx.rec().bytes_to_client) +
                 " bytes to the client: " + code + ": " + t.failure.detail,
             cid_);
    if (t.page_possible) co_await refuse(t.failure, version);
    tx.abort_transfer(code, t.failure.detail);
}

// 101 Switching Protocols: forward the head, then relay bytes both ways until one side closes.
template <class Client, class Upstream>
net::awaitable<bool> HttpRelay<Client, Upstream>::switch_protocols(Exchange& x) {
    using namespace net::experimental::awaitable_operators;
    if (!x.upgrade) {
        origin_.drop();
        const Failure f{Fail::upstream_bad_response, "101 Switching Protocols without an Upgrade request",
                        x.origin.host_port()};
        co_return co_await refuse(f, 11);
    }
    auto& counters = sv_.wire.counters;
    http::response<http::empty_body> res{http::status::switching_protocols, 11};
    for (const auto& f : x.rp->get()) {
        if (f.name() != http::field::connection && f.name() != http::field::keep_alive)
            res.insert(f.name_string(), f.value());
    }
    res.set(http::field::connection, "upgrade");
    res.set("X-Vigil-Transaction", x.tx.rec().txid);
    expire_after(client_, sv_.wire.cfg.io);
    x.tx.first_byte();
    auto [ec, n] = co_await http::async_write(client_, res, use_nothrow);
    count(counters.bytes_out, n);
    if (ec) co_return false;
    count(counters.upgrades);
    // Bytes already read past either head belong to the new protocol.
    auto& ubuf = origin_.buffer();
    if (ubuf.size()) {
        auto [e1, m1] = co_await net::async_write(client_, ubuf.data(), use_nothrow);
        count(counters.bytes_out, m1);
        if (e1) co_return false;
        ubuf.clear();
    }
    if (cbuf_.size()) {
        auto [e2, m2] = co_await net::async_write(origin_.stream(), cbuf_.data(), use_nothrow);
        if (e2) co_return false;
        cbuf_.clear();
    }
    co_await (pump(client_, origin_.stream(), sv_.wire, counters.bytes_in, throttle_, Throttle::from_client) ||
              pump(origin_.stream(), client_, sv_.wire, counters.bytes_out, throttle_, Throttle::to_client));
    origin_.drop();
    co_return false;
}

}  // namespace vigil::session

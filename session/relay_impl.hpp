// HttpRelay's definitions, first half: a transaction top-down, the request phase and the
// exchange with the origin (the response phase is in respond_impl.hpp). Included only where
// the relay is instantiated (relay.cpp, the unit tests).
#pragma once

#include <boost/asio/experimental/awaitable_operators.hpp>

#include "session/policy.hpp"
#include "session/relay.hpp"
#include "wire/messages.hpp"

namespace vigil::session {

template <class Client, class Upstream>
struct HttpRelay<Client, Upstream>::Exchange {
    RequestParser& parser;
    http::request<http::buffer_body>& in;
    const Authority& origin;
    std::string target;  // origin-form, without a continue token
    std::string scheme;  // "http" or "https"
    std::string url;
    TxAudit& tx;
    unsigned version = 11;  // what the client speaks: 10 or 11
    std::shared_ptr<const inspect::RuleSet> rules;
    inspect::Subject subject;
    inspect::Verdict verdict;
    bool scan = true;  // not bypassed by policy
    bool client_keep_alive = false;
    bool upgrade = false;
    bool has_body = false;
    std::string expect;
    CacheUse cu;
    http::request<http::buffer_body> out;  // the head sent to the origin
    double request_time = 0;
    std::optional<http::response_parser<http::buffer_body>> rp;  // the origin's response
    std::unique_ptr<inspect::BodyScanner> res_scan;
    std::optional<PageInfo> refusal;  // a phase that stops the transaction: the page to answer with
    std::optional<bool> continue_link;  // the request carried a Continue link: whether it is valid
    bool https() const { return scheme == "https"; }
};

template <class Client, class Upstream>
HttpRelay<Client, Upstream>::HttpRelay(RelayServices sv, Client& client, beast::flat_buffer& client_buf,
                                       uint64_t conn_id, std::string client_ip, typename Origin::Connect connect)
    : sv_(sv), client_(client), cbuf_(client_buf), cid_(conn_id), client_ip_(std::move(client_ip)),
      origin_(std::move(connect)) {}

// One transaction, top-down: request phase, the cache, the exchange with the origin, the
// response phase. Each returns false once the client has been answered otherwise.
template <class Client, class Upstream>
net::awaitable<bool> HttpRelay<Client, Upstream>::transaction(RequestParser& parser, const Authority& origin,
                                                              const std::string& raw_target, bool https) {
    TxAudit tx(sv_.audit, base_);
    tx_ = &tx;
    struct Clear {
        TxAudit*& p;
        ~Clear() { p = nullptr; }
    } clear_tx{tx_};
    Exchange x{parser, parser.get(), origin, raw_target, https ? "https" : "http", {}, tx};
    x.url = full_url(x.scheme, origin, x.target);
    tx.rec().method = std::string(x.in.method_string());
    tx.rec().scheme = x.scheme;
    tx.rec().host = origin.host;
    tx.rec().port = origin.port;
    tx.rec().url = x.url;
    tx.rec().user_agent = std::string(x.in[http::field::user_agent]).substr(0, 512);
    if (!admit(x)) co_return co_await answer(x);

    // The cache (docs/caching.md): a fresh stored response is the answer; a stale one with
    // a validator is revalidated; anything else goes to the origin and may be stored.
    if (sv_.cache.store && !x.upgrade)
        x.cu = cache_lookup(*sv_.cache.store, x.in, x.url, x.scan && !x.has_body && !origin_.personal());
    if (x.cu.entry && !x.cu.entry->body)
        x.cu.entry = co_await load_cached_body(*sv_.cache.disk, *sv_.cache.store, x.cu.entry);
    if (x.cu.asked) tx.rec().cache = "MISS";
    if (x.cu.entry && x.cu.fresh) co_return co_await serve_cached(x, x.cu.entry, "HIT");
    if (x.cu.only_if_cached) {
        const Failure f{Fail::cache_only_miss,
                        "the request asked for a cached answer only (only-if-cached) and Vigil has no fresh one", x.url};
        co_return co_await refuse(f, x.version);
    }

    build_origin_request(x);
    if (!co_await exchange_with_origin(x)) co_return false;
    http::response<http::buffer_body> res;
    std::unique_ptr<Compressor> compressor;
    switch (respond(x, res, compressor)) {
        case ResponseStep::deliver: co_return co_await deliver(x, res, std::move(compressor));
        case ResponseStep::upgrade: co_return co_await switch_protocols(x);
        case ResponseStep::revalidated: co_return co_await serve_cached(x, x.cu.entry, "REVALIDATED");
        case ResponseStep::refuse: break;
    }
    co_return co_await answer(x);
}

// A phase stopped the transaction: its page, or the redirect of a Continue link.
template <class Client, class Upstream>
net::awaitable<bool> HttpRelay<Client, Upstream>::answer(Exchange& x) {
    if (x.continue_link) co_return co_await continue_redirect(x);
    co_return co_await refuse(*x.refusal, x.version);
}

// The request phase, a decision without I/O: false (and x.refusal or x.continue_link set) when
// the transaction stops here.
template <class Client, class Upstream>
bool HttpRelay<Client, Upstream>::admit(Exchange& x) {
    auto& in = x.in;
    x.version = in.version() == 10 ? 10 : 11;
    if (sv_.audit.writer && !sv_.audit.writer->healthy() && sv_.wire.cfg.audit_fail_closed) {
        x.refusal = page_for(Failure{Fail::audit_unavailable,
                                     "the audit log cannot be written, so no request is served "
                                     "(audit.on_failure = fail-closed)",
                                     x.url});
        return false;
    }
    if (auto cont = take_continue_token(sv_.policy, x.target, client_ip_, x.origin.host)) {
        // The user chose "Continue" on a warn page: send the browser back to the clean URL.
        x.continue_link = *cont;
        x.url = full_url(x.scheme, x.origin, x.target);
        return false;
    }
    x.url = full_url(x.scheme, x.origin, x.target);
    x.rules = sv_.policy.rules.load();
    x.subject = inspect::Subject{x.origin.host, x.url, base_.user, split_groups(base_.group), client_ip_};
    x.verdict = x.rules->check_request(x.subject, header_list(in.base()));
    x.tx.verdict(x.verdict);
    if (!enforce(x)) return false;
    x.scan = !x.verdict.bypass;
    x.client_keep_alive = in.keep_alive() && !sv_.stopping;
    HopByHop hop(in.base());
    x.upgrade = hop.connection_has("upgrade") && in.count(http::field::upgrade) > 0;
    x.has_body = !x.parser.is_done();
    if (x.has_body && x.parser.chunked() &&
        first_chunk_line_bad({static_cast<const char*>(cbuf_.data().data()), cbuf_.size()})) {
        x.refusal = page_for(fail(sv_.wire.counters, Fail::bad_request,
                                  "a chunk-size line ends in a bare LF (HTTP/1.1 needs CRLF)", x.url));
        return false;
    }
    x.expect = std::string(in[http::field::expect]);
    if (!x.expect.empty() && !iequals(x.expect, "100-continue")) {
        x.refusal = page_for(Failure{Fail::bad_expect, "Vigil only supports \"Expect: 100-continue\"", x.origin.host_port()});
        return false;
    }
    return true;
}

// The head the origin gets: origin-form target, hop-by-hop fields removed, Host from the URL,
// Expect answered by Vigil, only codings Vigil can decode offered when the body is scanned.
template <class Client, class Upstream>
void HttpRelay<Client, Upstream>::build_origin_request(Exchange& x) {
    auto& in = x.in;
    auto& out = x.out;
    if (in.method() != http::verb::unknown) out.method(in.method());
    else out.method_string(in.method_string());
    out.target(x.target);
    out.version(11);
    HopByHop hop(in.base());
    for (const auto& f : in) {
        if (hop.contains(f.name_string()) || f.name() == http::field::host || f.name() == http::field::expect ||
            (x.scan && f.name() == http::field::accept_encoding))
            continue;
        if (f.name() == http::field::cookie && f.value().find("vigil_") != std::string_view::npos) {
            // Vigil's grants are for the gateway only; the rest of the field goes on.
            if (auto rest = without_grants(f.value()); !rest.empty()) out.insert(http::field::cookie, rest);
            continue;
        }
        out.insert(f.name_string(), f.value());
    }
    // What is scanned must be decodable: the origin is offered only the codings Vigil decodes
    // (a browser's zstd is not passed on), so another coding in a response is the origin's
    // choice and inspect.on_error's case.
    if (x.scan) {
        if (auto ae = decodable_codings(field_list(in.base(), http::field::accept_encoding)); !ae.empty())
            out.set(http::field::accept_encoding, ae);
    }
    out.set(http::field::host, host_header(x.origin, x.https()));
    if (connection_bound_auth(in[http::field::authorization])) origin_.mark_personal();
    if (x.upgrade) {
        out.set(http::field::upgrade, field_list(in.base(), http::field::upgrade));
        out.set(http::field::connection, "upgrade");
    }
    if (auto len = x.parser.content_length()) out.content_length(*len);
    else if (x.parser.chunked()) out.chunked(true);
    if (x.cu.entry) ask_revalidation(out, *x.cu.entry);
    x.request_time = epoch_seconds();
}

// A kept-alive origin connection may have been closed by the origin meanwhile: a request
// without a body is retried once on a fresh connection; one with a body is not (not replayable).
template <class Client, class Upstream>
net::awaitable<bool> HttpRelay<Client, Upstream>::exchange_with_origin(Exchange& x) {
    const Config& cfg = sv_.wire.cfg;
    for (int attempt = 0;; ++attempt) {
        const bool reused = origin_.reusable_for(x.origin);
        if (!reused) {
            if (auto failure = co_await origin_.connect(x.origin)) co_return co_await refuse(*failure, x.version);
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

// Applies the request verdict: false (x.refusal set) for a block or an unanswered warning.
template <class Client, class Upstream>
bool HttpRelay<Client, Upstream>::enforce(Exchange& x) {
    const inspect::Verdict& v = x.verdict;
    if (v.action == inspect::Action::block) {
        count(sv_.wire.counters.blocked);
        x.refusal = block_page(v, x.url, cid_);
        return false;
    }
    if (v.action == inspect::Action::warn) {
        count(sv_.wire.counters.warned);
        auto host = parse_absolute_url(x.url);
        std::string h = host ? host->authority.host : x.url;
        if (!sv_.policy.warned.allowed(client_ip_, h) && !has_grant(sv_.policy, x.in.base(), client_ip_, h)) {
            x.refusal = warn_page(sv_.policy, v, x.url, client_ip_, h, cid_);
            return false;
        }
        log_info("warned and continued: " + x.url + " (" + v.rule + ")", cid_);
    }
    return true;
}

// A Continue link: a valid one sends the browser back to the clean URL with a grant for the
// host (a cookie, so the choice holds on any gateway with the same key, after a restart too).
template <class Client, class Upstream>
net::awaitable<bool> HttpRelay<Client, Upstream>::continue_redirect(Exchange& x) {
    if (!*x.continue_link) {
        const Failure f{Fail::bad_continue_token, "the continue link is invalid or expired; reload the page", x.url};
        co_return co_await refuse(f, x.version);
    }
    log_info("user chose to continue to " + x.url, cid_);
    if (tx_) {
        tx_->rec().status = 302;
        tx_->rec().action = "warn";
        tx_->rec().reason = "user chose to continue";
    }
    http::response<http::string_body> res{http::status::found, x.version == 10 ? 10u : 11u};
    res.set(http::field::location, x.url);
    res.set(http::field::cache_control, "no-store");
    res.insert(http::field::set_cookie, grant_cookie(sv_.policy, client_ip_, x.origin.host, x.https()));
    if (tx_) res.set("X-Vigil-Transaction", tx_->rec().txid);
    res.keep_alive(false);
    res.prepare_payload();
    expire_after(client_, sv_.wire.cfg.io);
    auto [ec, n] = co_await http::async_write(client_, res, use_nothrow);
    count(sv_.wire.counters.bytes_out, n);
    co_return false;
}

template <class Client, class Upstream>
net::awaitable<bool> HttpRelay<Client, Upstream>::refuse(const PageInfo& given, unsigned version) {
    PageInfo info = given;
    info.conn_id = cid_;
    co_await send_page(client_, sv_.wire, info, version, tx_);
    co_return false;
}

template <class Client, class Upstream>
net::awaitable<bool> HttpRelay<Client, Upstream>::block(const inspect::Verdict& v, const std::string& url,
                                                        unsigned version) {
    count(sv_.wire.counters.blocked);
    const PageInfo page = block_page(v, url, cid_);
    co_return co_await refuse(page, version);
}

}  // namespace vigil::session

// HttpRelay's definitions, second half: the response phase — the origin's head checked, the
// response rules, the cache (store, revalidate, serve), compression, and the body to the client.
#pragma once

#include "session/relay_impl.hpp"

namespace vigil::session {

// The response phase, a decision without I/O: the origin's head checked, the cache told, the
// client's head built (`res`, with its compressor), the response-header rules applied. Says
// what the transaction does next (refuse: x.refusal is set).
template <class Client, class Upstream>
ResponseStep HttpRelay<Client, Upstream>::respond(Exchange& x, http::response<http::buffer_body>& res,
                                                  std::unique_ptr<Compressor>& compressor) {
    auto& head = x.rp->get();
    const int status = head.result_int();
    for (auto [it, end] = head.equal_range(http::field::www_authenticate); it != end; ++it)
        if (connection_bound_auth(it->value())) origin_.mark_personal();
    x.tx.rec().status = status;
    x.tx.rec().content_type = std::string(head[http::field::content_type]).substr(0, 200);
    if (auto bad = check_response_fields(head.base())) {
        origin_.drop();
        count(sv_.wire.counters.upstream_bad_response);
        x.refusal = page_for(Failure{Fail::upstream_bad_response, "invalid response framing: " + *bad, x.origin.host_port()});
        return ResponseStep::refuse;
    }
    if (status == 101) return ResponseStep::upgrade;
    if (x.cu.invalidate && status < 400) invalidate_cached(*sv_.cache.store, x.scheme, x.origin, x.url, head);
    if (x.cu.asked) {
        if (x.cu.entry && status == 304) {
            // Still good: the stored response takes the 304's fields and is the answer.
            if (!head.keep_alive() || !x.rp->is_done()) origin_.drop();
            cache::Entry updated = *x.cu.entry;
            updated.headers = cache::updated_fields(x.cu.entry->headers, stored_fields(head.base()));
            updated.request_time = x.request_time;
            updated.response_time = epoch_seconds();
            x.cu.entry = sv_.cache.store->replace(x.cu.entry, std::move(updated));
            return ResponseStep::revalidated;
        }
        count(sv_.wire.counters.cache_misses);
    }
    const bool bodyless = client_head(x, res);
    if (!bodyless && x.version == 11) compressor = compress_for(x.in, head, x.https(), x.rp->content_length());
    if (compressor) compressed_head(res, *compressor);
    res.keep_alive(x.client_keep_alive);
    if (x.scan) {
        x.verdict.merge(x.rules->check_response_headers(x.subject, header_list(head.base())));
        if (x.verdict.action == inspect::Action::block) {
            origin_.drop();
            count(sv_.wire.counters.blocked);
            x.refusal = block_page(x.verdict, x.url, cid_);
            return ResponseStep::refuse;
        }
        if (!bodyless)
            x.res_scan = x.rules->scan_body(inspect::Target::response_body,
                                            field_list(head.base(), http::field::content_encoding));
    }
    return ResponseStep::deliver;
}

// The head the client gets: the origin's without hop-by-hop fields, framed for the client (a
// close-delimited or chunked body goes to an HTTP/1.1 client chunked). Returns whether the
// response has no body.
template <class Client, class Upstream>
bool HttpRelay<Client, Upstream>::client_head(Exchange& x, http::response<http::buffer_body>& res) {
    auto& head = x.rp->get();
    const int status = head.result_int();
    res.result(status);
    res.reason(head.reason());
    res.version(x.version);
    HopByHop rhop(head.base());
    for (const auto& f : head) {
        if (!rhop.contains(f.name_string())) res.insert(f.name_string(), f.value());
    }
    const bool bodyless = x.in.method() == http::verb::head || status == 204 || status == 304;
    if (bodyless) {
        if (auto cl = head[http::field::content_length]; !cl.empty() && status != 204)
            res.set(http::field::content_length, cl);
    } else if (auto len = x.rp->content_length()) {
        res.content_length(*len);
    } else if (x.version == 11) {
        res.chunked(true);
    } else {
        x.client_keep_alive = false;
    }
    res.set("X-Vigil-Transaction", x.tx.rec().txid);
    add_pending_cookie(res);
    return bodyless;
}

// The response body through the filter chain (scan and hold, cache copy, compression,
// throttle) to the client, then the transaction's verdict.
template <class Client, class Upstream>
net::awaitable<bool> HttpRelay<Client, Upstream>::deliver(Exchange& x, http::response<http::buffer_body>& res,
                                                          std::unique_ptr<Compressor> compressor) {
    auto& head = x.rp->get();
    auto& counters = sv_.wire.counters;
    inspect::BodyScanner* res_scan = x.res_scan.get();
    std::optional<cache::Entry> to_store;
    BodyCapture capture;
    if (x.cu.asked && x.cu.store) store_when_complete(x, to_store, capture);
    const bool upstream_keep_alive = head.keep_alive();
    // Responses are held only when scanned: unscanned downloads stream at once.
    error_code cut;
    BodyOptions download{res_scan, res_scan ? sv_.wire.cfg.hold_bytes : 0, &x.tx.rec().bytes_to_client, throttle_,
                         compressor.get(), to_store ? &capture : nullptr, &cut};
    x.tx.body_started();
    auto relayed = co_await relay_body(origin_.stream(), origin_.buffer(), *x.rp, client_, res, sv_.wire, download);
    x.tx.body_done();
    if (compressor && relayed == RelayError::none) count_compressed(counters, *compressor);
    if (res_scan) {
        x.tx.rec().scan_result = res_scan->scan_result();
        // Counted whatever came of it (blocked under inspect.oversize/on_error, or let through).
        if (res_scan->unscanned()) count(counters.unscanned);
    }
    if (relayed != RelayError::none || !upstream_keep_alive) origin_.drop();
    if (relayed == RelayError::blocked_before_head) {
        x.tx.verdict(res_scan->verdict());
        co_return co_await block(res_scan->verdict(), x.url, x.version);
    }
    if (relayed == RelayError::blocked_after_head) {
        // Past hold_bytes the head is out: the only safe answer is to cut the transfer short.
        count(counters.blocked);
        count(counters.aborted_transfers);
        x.tx.verdict(res_scan->verdict());
        x.tx.rec().reason = "transfer aborted after " + std::to_string(res_scan->scanned_bytes()) + " bytes: " +
                            res_scan->verdict().reason;
        log_warn("transfer of " + x.url + " aborted after " + std::to_string(res_scan->scanned_bytes()) +
                     " bytes: " + res_scan->verdict().reason + " (rule " + res_scan->verdict().rule + ")",
                 cid_);
        co_return false;
    }
    if (res_scan) {
        x.verdict.merge(res_scan->verdict());
        if (res_scan->outcome() == inspect::ScanOutcome::error) count(counters.scan_errors);
    }
    note_verdict(counters, x.verdict, x.url, cid_);
    x.tx.verdict(x.verdict);
    if (relayed == RelayError::none) co_return x.client_keep_alive;
    co_await transfer_failed(relayed, cut, x.tx, x.url, x.version);
    co_return false;
}

// The origin's response, when the cache may store it, is copied as it is read and stored once
// the whole body is read and scanned clean (a bodiless response has nothing to scan), before
// its last bytes go to the client.
template <class Client, class Upstream>
void HttpRelay<Client, Upstream>::store_when_complete(Exchange& x, std::optional<cache::Entry>& to_store,
                                                      BodyCapture& capture) {
    auto& head = x.rp->get();
    to_store = entry_to_store(*sv_.cache.store, x.cu, x.url, head.base(), x.rp->content_length(), x.request_time,
                              x.rules->version(), cid_);
    if (!to_store) return;
    capture.limit = sv_.cache.store->options().max_object_bytes;
    capture.complete = [this, &x, &to_store, &capture] {
        inspect::BodyScanner* res_scan = x.res_scan.get();
        inspect::Verdict v = x.verdict;
        if (res_scan) v.merge(res_scan->verdict());
        if (!capture.overflow && v.action == inspect::Action::allow && (!res_scan || res_scan->outcome() == inspect::ScanOutcome::clean)) {
            to_store->body_size = capture.bytes.size();
            to_store->body = std::make_shared<const std::string>(std::move(capture.bytes));
            sv_.cache.store->put(std::move(*to_store));
        } else {
            log_debug("cache: not storing " + x.url + ": " +
                          (capture.overflow ? "larger than cache.max_object_bytes"
                                            : "not scanned clean (" + (res_scan ? res_scan->scan_result() : "") + ")"),
                      cid_);
        }
    };
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

template <class Client, class Upstream>
net::awaitable<bool> HttpRelay<Client, Upstream>::serve_cached(Exchange& x, std::shared_ptr<const cache::Entry> e,
                                                               const char* how) {
    TxAudit& tx = x.tx;
    auto& counters = sv_.wire.counters;
    const inspect::RuleSet& rules = *x.rules;
    inspect::Verdict verdict = x.verdict;
    tx.rec().cache = how;
    tx.rec().status = e->status;
    tx.rec().content_type = cache::field(e->headers, "content-type").substr(0, 200);
    count(std::string_view(how) == "HIT" ? counters.cache_hits : counters.cache_revalidated);
    http::response<http::buffer_body> res;
    res.result(static_cast<unsigned>(e->status));
    res.reason(e->reason);
    res.version(x.version);
    for (const auto& [n, v] : e->headers) res.insert(n, v);
    res.set("X-Vigil-Transaction", tx.rec().txid);
    add_pending_cookie(res);
    // The response-header rules run for this user; the body rules run again when the ruleset
    // changed since the body was scanned.
    verdict.merge(rules.check_response_headers(x.subject, header_list(res.base())));
    if (verdict.action == inspect::Action::block) co_return co_await block(verdict, x.url, x.version);
    std::string scan_result = "clean";
    if (e->ruleset != rules.version()) {
        auto scanner = rules.scan_body(inspect::Target::response_body, field_list(res.base(), http::field::content_encoding));
        scanner->feed(*e->body);
        count(counters.cache_rescanned);
        scan_result = scanner->scan_result();
        if (scanner->verdict().action == inspect::Action::block) {
            sv_.cache.store->remove(e);
            tx.rec().scan_result = scan_result;
            tx.verdict(scanner->verdict());
            co_return co_await block(scanner->verdict(), x.url, x.version);
        }
        verdict.merge(scanner->verdict());
        e = retag_cached(e, scanner->outcome() == inspect::ScanOutcome::clean, rules.version());
    }
    tx.rec().scan_result = scan_result;
    note_verdict(counters, verdict, x.url, cid_);
    tx.verdict(verdict);
    res.set(http::field::age, std::to_string(static_cast<int64_t>(cache::current_age(*e, epoch_seconds()))));
    const bool not_modified = cache::not_modified(x.cu.request, *e);
    if (not_modified) {
        res.result(http::status::not_modified);
        res.reason("Not Modified");
        tx.rec().status = 304;
    }
    const bool bodyless = x.in.method() == http::verb::head || not_modified || e->status == 204;
    std::unique_ptr<Compressor> compressor;
    if (!bodyless && x.version == 11) compressor = compress_for(x.in, res, x.https(), e->body_size);
    if (compressor) compressed_head(res, *compressor);
    else if (!not_modified && e->status != 204) res.content_length(e->body_size);
    res.keep_alive(x.client_keep_alive);
    if (bodyless) {
        http::serializer<false, http::buffer_body> sr{res};
        expire_after(client_, sv_.wire.cfg.io);
        auto [ec, n] = co_await http::async_write_header(client_, sr, use_nothrow);
        count(counters.bytes_out, n);
        tx.rec().bytes_to_client += static_cast<int64_t>(n);
        co_return !ec && x.client_keep_alive;
    }
    const std::shared_ptr<const std::string> body = e->body;  // kept while it is written
    co_return co_await write_cached_body(x, res, *body, std::move(compressor));
}

// A stored response scanned again under a newer ruleset: kept under that ruleset when clean,
// otherwise served (as the origin's answer would be) but no longer stored.
template <class Client, class Upstream>
std::shared_ptr<const cache::Entry> HttpRelay<Client, Upstream>::retag_cached(std::shared_ptr<const cache::Entry> e,
                                                                              bool clean, int64_t ruleset) {
    if (!clean) {
        sv_.cache.store->remove(e);
        return e;
    }
    cache::Entry retagged = *e;
    retagged.ruleset = ruleset;
    return sv_.cache.store->replace(e, std::move(retagged));
}

template <class Client, class Upstream>
net::awaitable<bool> HttpRelay<Client, Upstream>::write_cached_body(Exchange& x, http::response<http::buffer_body>& res,
                                                                    const std::string& body,
                                                                    std::unique_ptr<Compressor> compressor) {
    auto& counters = sv_.wire.counters;
    http::serializer<false, http::buffer_body> sr{res};
    size_t off = 0;
    auto next_piece = [&]() -> size_t {
        const size_t n = std::min(body.size() - off, RelayBuffer::size());
        std::string_view piece(body.data() + off, n);
        off += n;
        const bool last = off >= body.size();
        if (compressor) piece = compressor->feed(piece, last);
        res.body().data = piece.empty() ? nullptr : const_cast<char*>(piece.data());
        res.body().size = piece.size();
        res.body().more = !last;
        return n;
    };
    try {
        for (bool first = true; first || !sr.is_done(); first = false) {
            const size_t n = next_piece();
            expire_after(client_, sv_.wire.cfg.io);
            auto [ec, w] = co_await http::async_write(client_, sr, use_nothrow);
            count(counters.bytes_out, w);
            x.tx.rec().bytes_to_client += static_cast<int64_t>(w);
            if (ec && ec != http::error::need_buffer) co_return false;
            if (throttle_) co_await pace(throttle_, Throttle::to_client, n, sv_.wire);
        }
    } catch (const std::exception& ex) {
        log_error(std::string("compression failed, transfer ended: ") + ex.what(), cid_);
        co_return false;
    }
    if (compressor) count_compressed(counters, *compressor);
    co_return x.client_keep_alive;
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

// A compressor when the response is worth compressing for this client (docs/traffic.md): it
// accepts gzip or br, the origin sent a compressible type uncompressed, whole (no range), at
// least compress.min_bytes (or of unknown length), and allows transformation.
template <class Client, class Upstream>
template <class Request, class Response>
std::unique_ptr<Compressor> HttpRelay<Client, Upstream>::compress_for(const Request& req, const Response& res,
                                                                      bool https, boost::optional<uint64_t> length) {
    const auto& c = sv_.wire.cfg;
    if (!c.compress || (https && !c.compress_https)) return nullptr;
    if (length && *length < c.compress_min_bytes) return nullptr;
    if (res.result_int() == 206 || res.count(http::field::content_range) || req.count(http::field::range))
        return nullptr;
    // List-valued fields are read as all their field lines together (RFC 9110 5.3).
    if (auto ce = field_list(res.base(), http::field::content_encoding); !ce.empty() && !beast::iequals(ce, "identity"))
        return nullptr;
    if (!compressible_type(res[http::field::content_type])) return nullptr;
    if (has_no_transform(field_list(res.base(), http::field::cache_control))) return nullptr;
    auto coding = accepted_coding(field_list(req.base(), http::field::accept_encoding));
    return coding ? Compressor::make(*coding) : nullptr;
}

}  // namespace vigil::session

// HttpRelay's definitions, the response phase: the origin's head checked, the response rules,
// the cache told (store, revalidate), compression, and the body to the client.
#pragma once

#include "session/answer_impl.hpp"

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
    download.first_write = x.tx.first_byte_slot();
    x.tx.body_started();
    auto relayed = co_await relay_body(origin_.stream(), origin_.buffer(), *x.rp, client_, res, sv_.wire, download);
    x.tx.body_done();
    if (compressor && relayed == RelayError::none) count_compressed(counters, *compressor);
    if (res_scan) {
        x.tx.rec().scan_result = res_scan->scan_result();
        // Counted whatever came of it (blocked under inspect.oversize/on_error, or let through).
        if (res_scan->unscanned()) count(counters.unscanned);
        if (res_scan->outcome() == inspect::ScanOutcome::unscanned_budget) count(counters.scan_over_budget);
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

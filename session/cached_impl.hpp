// HttpRelay's definitions, the cache's part: answering from a stored response (HIT, or
// REVALIDATED after the origin's 304), with the response-header rules for this user and the
// body rules again under a newer ruleset.
#pragma once

#include "session/respond_impl.hpp"

namespace vigil::session {

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
        tx.first_byte();
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
            x.tx.first_byte();
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

}  // namespace vigil::session

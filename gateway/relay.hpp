// Internal: the HTTP relay phase — one client connection's sequence of transactions to origins,
// with the origin connection kept alive between them. Generic over plain and TLS streams.
#pragma once

#include <functional>

#include <boost/asio/experimental/awaitable_operators.hpp>

#include "gateway/http_io.hpp"
#include "gateway/inspection.hpp"
#include "gateway/relay_cache.hpp"
#include "gateway/upstream.hpp"

namespace vigil::gateway {

template <class Client, class Upstream>
class HttpRelay {
public:
    // Opens an origin connection into the slot, or says why it could not (a page to answer with).
    using Connect =
        std::function<net::awaitable<std::optional<PageInfo>>(const Authority&, std::optional<Upstream>&, Route&)>;

    HttpRelay(Gateway& gw, Client& client, beast::flat_buffer& client_buf, uint64_t conn_id, std::string client_ip,
              Connect connect)
        : gw_(gw), client_(client), cbuf_(client_buf), cid_(conn_id), client_ip_(std::move(client_ip)),
          connect_(std::move(connect)) {}

    // Connection-level audit fields (client, TLS mode, SNI, TLS parameters) for every record.
    audit::Record& audit_base() { return base_; }

    // Starts with an origin connection made earlier (the bump connects before the first request).
    void adopt(std::optional<Upstream> up, const Authority& origin, Route route) {
        upstream_ = std::move(up);
        route_ = std::move(route);
        key_ = origin.host_port();
    }

    // After the last transaction: the origin connection, when it is idle and clean (every error
    // path drops it; nothing read past the last response) and carries no connection-bound
    // authentication, for another client.
    std::optional<Upstream> release_idle_upstream(std::string& key, std::shared_ptr<ParentLease>& lease) {
        if (personal_ || !upstream_clean()) return std::nullopt;
        key = key_;
        lease = route_.lease;
        std::optional<Upstream> out(std::move(*upstream_));
        drop_upstream();
        return out;
    }

    // The client connection went quiet (parked): the origin connection is handed over like at
    // the session's end (or kept, when it may not be), and the read buffer is let go.
    std::optional<Upstream> park(std::string& key, std::shared_ptr<ParentLease>& lease) {
        auto out = release_idle_upstream(key, lease);
        if (ubuf_.size() == 0) ubuf_.shrink_to_fit();
        return out;
    }

    // A compressor when the response is worth compressing for this client (docs/traffic.md):
    // it accepts gzip or br, the origin sent a compressible type uncompressed, whole (no
    // range), at least compress.min_bytes (or of unknown length), and allows transformation.
    template <class Request, class Response>
    std::unique_ptr<Compressor> compress_for(const Request& req, const Response& res, bool https,
                                             boost::optional<uint64_t> length) {
        const auto& c = gw_.cfg;
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

    // Whether the origin connection can carry another request: the origin has not closed it and
    // sent nothing past the last response, neither read already (into ubuf_, e.g. with a short
    // body's head) nor waiting in the stream or on the socket. Such bytes would otherwise be
    // taken as the answer to the next request.
    bool upstream_clean() { return upstream_ && ubuf_.size() == 0 && idle_stream_usable(*upstream_); }

    // Closes the origin connection (and ends its count at a parent proxy).
    void drop_upstream() {
        upstream_.reset();
        route_.lease.reset();
    }

    // The connection's bandwidth limits (may be rebound between requests as the user changes).
    void set_throttle(Throttle* t) { throttle_ = t; }

    // Relays one request and its response. Returns whether the client connection may carry
    // another request (keep-alive, nothing went wrong, not shutting down).
    net::awaitable<bool> transaction(RequestParser& req_parser, const Authority& origin, const std::string& raw_target,
                                     bool default_port_is_443) {
        auto& in = req_parser.get();
        const std::string scheme = default_port_is_443 ? "https" : "http";
        std::string target = raw_target;
        TxAudit tx(gw_, base_);
        tx_ = &tx;
        struct Clear {
            TxAudit*& p;
            ~Clear() { p = nullptr; }
        } clear_tx{tx_};
        tx.rec().method = std::string(in.method_string());
        tx.rec().scheme = scheme;
        tx.rec().host = origin.host;
        tx.rec().port = origin.port;
        tx.rec().url = full_url(scheme, origin, target);
        tx.rec().user_agent = std::string(in[http::field::user_agent]).substr(0, 512);
        if (gw_.audit && !gw_.audit->healthy() && gw_.cfg.audit_fail_closed) {
            PageInfo info{503, "Service unavailable", "the audit log cannot be written, so no request is served "
                          "(audit.on_failure = fail-closed)", tx.rec().url, "audit_unavailable"};
            co_await page(info, in.version());
            co_return false;
        }
        if (auto cont = take_continue_token(gw_, target, client_ip_, origin.host)) {
            // The user chose "Continue" on a warn page: send the browser back to the clean URL.
            co_return co_await continue_redirect(*cont, full_url(scheme, origin, target), in.version());
        }
        const std::string url = full_url(scheme, origin, target);
        auto rules = gw_.rules.load();
        inspect::Subject subject{origin.host, url, base_.user, split_groups(base_.group), client_ip_};
        inspect::Verdict verdict = rules->check_request(subject, header_list(in.base()));
        tx.verdict(verdict);
        if (!co_await enforce(verdict, url, in.version())) co_return false;
        const bool scan = !verdict.bypass;
        const unsigned version = in.version() == 10 ? 10 : 11;
        bool client_keep_alive = in.keep_alive() && !gw_.stopping;
        HopByHop hop(in.base());
        const bool upgrade = hop.connection_has("upgrade") && in.count(http::field::upgrade) > 0;
        const bool has_body = !req_parser.is_done();
        if (has_body && req_parser.chunked() &&
            first_chunk_line_bad({static_cast<const char*>(cbuf_.data().data()), cbuf_.size()})) {
            bump(gw_.counters.bad_request);
            PageInfo info{400, "Bad request", "a chunk-size line ends in a bare LF (HTTP/1.1 needs CRLF)", url,
                          "bad_request"};
            co_await page(info, version);
            co_return false;
        }
        auto expect = in[http::field::expect];
        if (!expect.empty() && !iequals(expect, "100-continue")) {
            PageInfo info{417, "Unsupported expectation", "Vigil only supports \"Expect: 100-continue\"",
                       origin.host_port(), "bad_expect"};
            co_await page(info, version);
            co_return false;
        }

        // The cache (docs/caching.md): a fresh stored response is the answer; a stale one with
        // a validator is revalidated; anything else goes to the origin and may be stored.
        CacheUse cu;
        if (gw_.cache && !upgrade) cu = cache_lookup(*gw_.cache, in, url, scan && !has_body && !personal_);
        if (cu.entry && !cu.entry->body) cu.entry = co_await load_cached_body(gw_.disk_pool, *gw_.cache, cu.entry);
        if (cu.asked) tx.rec().cache = "MISS";
        if (cu.entry && cu.fresh)
            co_return co_await serve_cached(cu.entry, "HIT", *rules, subject, verdict, url, in, cu.request, version,
                                            client_keep_alive, scheme == "https");
        if (cu.only_if_cached) {
            PageInfo info{504, "Not in the cache", "the request asked for a cached answer only (only-if-cached) "
                          "and Vigil has no fresh one", url, "cache_only_miss"};
            co_await page(info, version);
            co_return false;
        }

        http::request<http::buffer_body> out;
        if (in.method() != http::verb::unknown) out.method(in.method());
        else out.method_string(in.method_string());
        out.target(target);
        out.version(11);
        for (const auto& f : in) {
            if (hop.contains(f.name_string()) || f.name() == http::field::host || f.name() == http::field::expect ||
                (scan && f.name() == http::field::accept_encoding))
                continue;
            out.insert(f.name_string(), f.value());
        }
        // What is scanned must be decodable: the origin is offered only the codings Vigil
        // decodes (a browser's zstd is not passed on), so another coding in a response is
        // the origin's choice and inspect.on_error's case.
        if (scan) {
            if (auto ae = decodable_codings(field_list(in.base(), http::field::accept_encoding)); !ae.empty())
                out.set(http::field::accept_encoding, ae);
        }
        out.set(http::field::host, host_header(origin, default_port_is_443));
        if (connection_bound_auth(in[http::field::authorization])) personal_ = true;
        if (upgrade) {
            out.set(http::field::upgrade, field_list(in.base(), http::field::upgrade));
            out.set(http::field::connection, "upgrade");
        }
        if (auto len = req_parser.content_length()) out.content_length(*len);
        else if (req_parser.chunked()) out.chunked(true);
        if (cu.entry) ask_revalidation(out, *cu.entry);
        const double request_time = epoch_seconds();

        // A kept-alive origin connection may have been closed by the origin meanwhile: a request
        // without a body is retried once on a fresh connection; one with a body is not (not replayable).
        std::optional<http::response_parser<http::buffer_body>> rp;
        for (int attempt = 0;; ++attempt) {
            // An idle connection the origin has closed meanwhile is not tried (a request with a
            // body could not be retried on a fresh one), nor one that sent more than it was asked.
            const bool reused = key_ == origin.host_port() && upstream_clean();
            if (!reused) {
                drop_upstream();
                ubuf_.clear();
                if (auto failure = co_await connect_(origin, upstream_, route_)) {
                    co_await page(*failure, version);
                    co_return false;
                }
                key_ = origin.host_port();
            }
            if (attempt == 0 && has_body && iequals(expect, "100-continue")) {
                static const std::string cont = "HTTP/1.1 100 Continue\r\n\r\n";
                lowest(client_).expires_after(gw_.cfg.io);
                auto [ec, n] = co_await net::async_write(client_, net::buffer(cont), use_nothrow);
                bump(gw_.counters.bytes_out, n);
                if (ec) co_return false;
            }
            std::unique_ptr<inspect::BodyScanner> req_scan;
            if (scan && has_body) req_scan = rules->scan_body(inspect::Target::request_body,
                                                                 field_list(in.base(), http::field::content_encoding));
            // Request bodies are always held up to hold_bytes, so a framing error there reaches no origin.
            // A parent proxy takes the request in absolute-form; an origin in origin-form.
            out.target(route_.via_parent() ? full_url(scheme, origin, target) : target);
            BodyStall stall{gw_.cfg.body_stall, gw_.cfg.body_stall_bytes};
            stall.start();
            BodyOptions upload{req_scan.get(), gw_.cfg.hold_bytes, &tx.rec().bytes_from_client, throttle_};
            upload.stall = &stall;
            auto sent = co_await relay_body(client_, cbuf_, req_parser, *upstream_, out, gw_, upload);
            if (sent == RelayError::stalled || sent == RelayError::stalled_before_head) {
                // Too slow to be a real upload (or a body that can never complete): the origin
                // got nothing, or an incomplete request on a connection now closed.
                drop_upstream();
                bump(gw_.counters.body_timeout);
                PageInfo info{408, "Request timeout",
                              "the request body arrived slower than " + std::to_string(gw_.cfg.body_stall_bytes) +
                                  " bytes in " + std::to_string(gw_.cfg.body_stall.count()) +
                                  " seconds (timeouts.body_stall)",
                              url, "body_timeout"};
                co_await page(info, version);
                co_return false;
            }
            if (req_scan) tx.rec().scan_result = req_scan->scan_result();
            if (sent == RelayError::read || sent == RelayError::read_before_head) {
                tx.abort_transfer(gw_.stopping ? "shutdown" : "client_gone",
                                  "the client's connection ended during its request body");
                co_return false;
            }
            if (sent == RelayError::malformed_before_head || sent == RelayError::malformed) {
                drop_upstream();
                bump(gw_.counters.bad_request);
                PageInfo info{400, "Bad request",
                              std::string("the request body is not valid HTTP/1.1 framing") +
                                  (sent == RelayError::malformed ? " (the upload was cut off at the origin)" : ""),
                              url, "bad_request"};
                co_await page(info, version);
                co_return false;
            }
            if (sent == RelayError::blocked_before_head || sent == RelayError::blocked_after_head) {
                // An upload matched: the origin got nothing (or, past hold_bytes, an incomplete request).
                drop_upstream();
                bump(gw_.counters.blocked);
                tx.verdict(req_scan->verdict());
                PageInfo info = block_page(req_scan->verdict(), url, cid_);
                co_await page(info, version);
                co_return false;
            }
            if (sent == RelayError::none) {
                auto got = co_await read_response_head(*upstream_, ubuf_, rp, in.method() == http::verb::head, gw_,
                                                       response_error_);
                if (got == ResponseHead::ok) break;
                if (!(reused && !has_body && got == ResponseHead::closed_early && attempt == 0)) {
                    drop_upstream();
                    PageInfo info = got == ResponseHead::timeout
                                        ? PageInfo{504, "The site did not answer in time",
                                                   "the origin server did not send a response in time",
                                                   origin.host_port(), "upstream_timeout"}
                                        : PageInfo{502, "The site sent an invalid response", response_error_,
                                                   origin.host_port(), "upstream_bad_response"};
                    co_await page(info, version);
                    co_return false;
                }
            } else if (!(reused && !has_body && attempt == 0)) {
                drop_upstream();
                PageInfo info{502, "The site closed the connection",
                           "the origin server closed the connection while the request was being sent",
                           origin.host_port(), "upstream_closed"};
                co_await page(info, version);
                co_return false;
            }
            drop_upstream();  // stale kept-alive connection: retry on a new one
        }

        auto& head = rp->get();
        const int status = head.result_int();
        for (auto [it, end] = head.equal_range(http::field::www_authenticate); it != end; ++it)
            if (connection_bound_auth(it->value())) personal_ = true;
        tx.rec().status = status;
        tx.rec().content_type = std::string(head[http::field::content_type]).substr(0, 200);
        if (auto bad = check_response_fields(head.base())) {
            drop_upstream();
            bump(gw_.counters.upstream_bad_response);
            PageInfo info{502, "The site sent an invalid response", "invalid response framing: " + *bad,
                       origin.host_port(), "upstream_bad_response"};
            co_await page(info, version);
            co_return false;
        }
        if (status == 101) co_return co_await switch_protocols(*rp, upgrade, origin);
        if (cu.invalidate && status < 400) invalidate_cached(*gw_.cache, scheme, origin, url, head);
        std::optional<cache::Entry> to_store;
        BodyCapture capture;
        if (cu.asked) {
            if (cu.entry && status == 304) {
                // Still good: the stored response takes the 304's fields and is the answer.
                if (!head.keep_alive() || !rp->is_done()) drop_upstream();
                cache::Entry updated = *cu.entry;
                updated.headers = cache::updated_fields(cu.entry->headers, stored_fields(head.base()));
                updated.request_time = request_time;
                updated.response_time = epoch_seconds();
                auto entry = gw_.cache->replace(cu.entry, std::move(updated));
                co_return co_await serve_cached(entry, "REVALIDATED", *rules, subject, verdict, url, in, cu.request,
                                                version, client_keep_alive, scheme == "https");
            }
            bump(gw_.counters.cache_misses);
            if (cu.store) {
                to_store = entry_to_store(*gw_.cache, cu, url, head.base(), rp->content_length(), request_time,
                                          rules->version(), cid_);
                if (to_store) capture.limit = gw_.cache->options().max_object_bytes;
            }
        }

        http::response<http::buffer_body> res;
        res.result(head.result_int());
        res.reason(head.reason());
        res.version(version);
        HopByHop rhop(head.base());
        for (const auto& f : head) {
            if (!rhop.contains(f.name_string())) res.insert(f.name_string(), f.value());
        }
        const bool bodyless = in.method() == http::verb::head || status == 204 || status == 304;
        if (bodyless) {
            if (auto cl = head[http::field::content_length]; !cl.empty() && status != 204)
                res.set(http::field::content_length, cl);
        } else if (auto len = rp->content_length()) {
            res.content_length(*len);
        } else if (version == 11) {
            res.chunked(true);  // close-delimited or chunked from the origin: chunked to the client
        } else {
            client_keep_alive = false;
        }
        std::unique_ptr<Compressor> compressor;
        if (!bodyless && version == 11) compressor = compress_for(in, head, scheme == "https", rp->content_length());
        if (compressor) compressed_head(res, *compressor);
        const bool upstream_keep_alive = head.keep_alive();
        res.keep_alive(client_keep_alive);
        std::unique_ptr<inspect::BodyScanner> res_scan;
        if (scan) {
            verdict.merge(rules->check_response_headers(subject, header_list(head.base())));
            if (verdict.action == inspect::Action::block) {
                drop_upstream();
                bump(gw_.counters.blocked);
                PageInfo info = block_page(verdict, url, cid_);
                co_await page(info, version);
                co_return false;
            }
            if (!bodyless) res_scan = rules->scan_body(inspect::Target::response_body,
                                                        field_list(head.base(), http::field::content_encoding));
        }
        // Stored once the whole body is read and scanned clean (a bodiless response has nothing to
        // scan), before its last bytes go to the client.
        if (to_store) capture.complete = [&] {
            inspect::Verdict v = verdict;
            if (res_scan) v.merge(res_scan->verdict());
            if (!capture.overflow && v.action == inspect::Action::allow && (!res_scan || res_scan->scan_result() == "clean")) {
                to_store->body_size = capture.bytes.size();
                to_store->body = std::make_shared<const std::string>(std::move(capture.bytes));
                gw_.cache->put(std::move(*to_store));
            } else {
                log_debug("cache: not storing " + url + ": " +
                              (capture.overflow ? "larger than cache.max_object_bytes"
                                                : "not scanned clean (" + (res_scan ? res_scan->scan_result() : "") + ")"),
                          cid_);
            }
        };
        // Responses are held only when scanned: unscanned downloads stream at once.
        error_code cut;
        BodyOptions download{res_scan.get(), res_scan ? gw_.cfg.hold_bytes : 0, &tx.rec().bytes_to_client, throttle_,
                             compressor.get(), to_store ? &capture : nullptr, &cut};
        tx.body_started();
        auto relayed = co_await relay_body(*upstream_, ubuf_, *rp, client_, res, gw_, download);
        tx.body_done();
        if (compressor && relayed == RelayError::none) count_compressed(gw_.counters, *compressor);
        if (res_scan) {
            tx.rec().scan_result = res_scan->scan_result();
            // Counted whatever came of it (blocked under inspect.oversize/on_error, or let through).
            if (res_scan->scan_result().rfind("unscanned", 0) == 0) bump(gw_.counters.unscanned);
        }
        if (relayed != RelayError::none || !upstream_keep_alive) drop_upstream();
        if (relayed == RelayError::blocked_before_head) {
            bump(gw_.counters.blocked);
            tx.verdict(res_scan->verdict());
            PageInfo info = block_page(res_scan->verdict(), url, cid_);
            co_await page(info, version);
            co_return false;
        }
        if (relayed == RelayError::blocked_after_head) {
            // Past hold_bytes the head is out: the only safe answer is to cut the transfer short.
            bump(gw_.counters.blocked);
            bump(gw_.counters.aborted_transfers);
            tx.verdict(res_scan->verdict());
            tx.rec().reason = "transfer aborted after " + std::to_string(res_scan->scanned_bytes()) + " bytes: " +
                              res_scan->verdict().reason;
            log_warn("transfer of " + url + " aborted after " + std::to_string(res_scan->scanned_bytes()) +
                         " bytes: " + res_scan->verdict().reason + " (rule " + res_scan->verdict().rule + ")",
                     cid_);
            co_return false;
        }
        if (res_scan) {
            verdict.merge(res_scan->verdict());
            if (res_scan->scan_result() == "error") bump(gw_.counters.scan_errors);
        }
        note_verdict(gw_, verdict, url, cid_);
        tx.verdict(verdict);
        if (relayed == RelayError::none) co_return client_keep_alive;
        co_await transfer_failed(relayed, cut, tx, url, version);
        co_return false;
    }

private:
    // A response body that did not arrive or could not be delivered whole. Nothing sent to the
    // client yet (the head was still held): a 502 page. Either way the record says `aborted`
    // with the reason and the bytes the client actually got.
    net::awaitable<void> transfer_failed(RelayError relayed, const error_code& cut, TxAudit& tx, const std::string& url,
                                         unsigned version) {
        const TransferFailure f = classify_transfer_failure(relayed, cut, gw_.stopping, gw_.counters);
        log_info("transfer of " + url + " aborted after " + std::to_string(tx.rec().bytes_to_client) +
                     " bytes to the client: " + f.code + ": " + f.detail,
                 cid_);
        if (f.page_possible) {
            PageInfo info{f.status, "The site sent an incomplete response", f.detail, url, f.code};
            co_await page(info, version);
        }
        tx.abort_transfer(f.code, f.detail);
    }

    // Answers from a stored response (HIT or REVALIDATED). The response-header rules run for
    // this user; the body rules run again when the ruleset changed since the body was scanned.
    template <class Request>
    net::awaitable<bool> serve_cached(std::shared_ptr<const cache::Entry> e, const char* how,
                                      const inspect::RuleSet& rules, const inspect::Subject& subject,
                                      inspect::Verdict verdict, const std::string& url, const Request& in,
                                      const cache::Fields& request, unsigned version, bool keep_alive, bool https) {
        TxAudit& tx = *tx_;
        tx.rec().cache = how;
        tx.rec().status = e->status;
        tx.rec().content_type = cache::field(e->headers, "content-type").substr(0, 200);
        bump(std::string_view(how) == "HIT" ? gw_.counters.cache_hits : gw_.counters.cache_revalidated);
        http::response<http::buffer_body> res;
        res.result(static_cast<unsigned>(e->status));
        res.reason(e->reason);
        res.version(version);
        for (const auto& [n, v] : e->headers) res.insert(n, v);
        verdict.merge(rules.check_response_headers(subject, header_list(res.base())));
        if (verdict.action == inspect::Action::block) {
            bump(gw_.counters.blocked);
            PageInfo info = block_page(verdict, url, cid_);
            co_await page(info, version);
            co_return false;
        }
        std::string scan_result = "clean";
        if (e->ruleset != rules.version()) {
            auto scanner = rules.scan_body(inspect::Target::response_body, field_list(res.base(), http::field::content_encoding));
            scanner->feed(*e->body);
            bump(gw_.counters.cache_rescanned);
            scan_result = scanner->scan_result();
            if (scanner->verdict().action == inspect::Action::block) {
                gw_.cache->remove(e);
                bump(gw_.counters.blocked);
                tx.rec().scan_result = scan_result;
                tx.verdict(scanner->verdict());
                PageInfo info = block_page(scanner->verdict(), url, cid_);
                co_await page(info, version);
                co_return false;
            }
            verdict.merge(scanner->verdict());
            if (scan_result == "clean") {
                cache::Entry retagged = *e;
                retagged.ruleset = rules.version();
                e = gw_.cache->replace(e, std::move(retagged));
            } else {
                gw_.cache->remove(e);  // served as the origin's answer would be, but no longer stored
            }
        }
        tx.rec().scan_result = scan_result;
        note_verdict(gw_, verdict, url, cid_);
        tx.verdict(verdict);
        res.set(http::field::age, std::to_string(static_cast<int64_t>(cache::current_age(*e, epoch_seconds()))));
        const bool not_modified = cache::not_modified(request, *e);
        if (not_modified) {
            res.result(http::status::not_modified);
            res.reason("Not Modified");
            tx.rec().status = 304;
        }
        const bool bodyless = in.method() == http::verb::head || not_modified || e->status == 204;
        std::unique_ptr<Compressor> compressor;
        if (!bodyless && version == 11) compressor = compress_for(in, res, https, e->body_size);
        if (compressor) compressed_head(res, *compressor);
        else if (!not_modified && e->status != 204) res.content_length(e->body_size);
        res.keep_alive(keep_alive);
        http::serializer<false, http::buffer_body> sr{res};
        if (bodyless) {
            lowest(client_).expires_after(gw_.cfg.io);
            auto [ec, n] = co_await http::async_write_header(client_, sr, use_nothrow);
            bump(gw_.counters.bytes_out, n);
            tx.rec().bytes_to_client += static_cast<int64_t>(n);
            co_return !ec && keep_alive;
        }
        const std::string& body = *e->body;
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
                lowest(client_).expires_after(gw_.cfg.io);
                auto [ec, w] = co_await http::async_write(client_, sr, use_nothrow);
                bump(gw_.counters.bytes_out, w);
                tx.rec().bytes_to_client += static_cast<int64_t>(w);
                if (ec && ec != http::error::need_buffer) co_return false;
                if (throttle_) co_await pace(throttle_, Throttle::to_client, n, gw_);
            }
        } catch (const std::exception& ex) {
            log_error(std::string("compression failed, transfer ended: ") + ex.what(), cid_);
            co_return false;
        }
        if (compressor) count_compressed(gw_.counters, *compressor);
        co_return keep_alive;
    }

    // Applies a request verdict: false when the client was answered with a block or warn page.
    net::awaitable<bool> enforce(const inspect::Verdict& v, const std::string& url, unsigned version) {
        if (v.action == inspect::Action::block) {
            bump(gw_.counters.blocked);
            PageInfo info = block_page(v, url, cid_);
            co_await page(info, version);
            co_return false;
        }
        if (v.action == inspect::Action::warn) {
            bump(gw_.counters.warned);
            auto host = parse_absolute_url(url);
            std::string h = host ? host->authority.host : url;
            if (!gw_.warned.allowed(client_ip_, h)) {
                PageInfo info = warn_page(gw_, v, url, client_ip_, h, cid_);
                co_await page(info, version);
                co_return false;
            }
            log_info("warned and continued: " + url + " (" + v.rule + ")", cid_);
        }
        co_return true;
    }

    net::awaitable<bool> continue_redirect(bool valid, const std::string& url, unsigned version) {
        if (!valid) {
            PageInfo info{403, "This link has expired", "the continue link is invalid or expired; reload the page",
                          url, "bad_continue_token"};
            co_await page(info, version);
            co_return false;
        }
        log_info("user chose to continue to " + url, cid_);
        if (tx_) {
            tx_->rec().status = 302;
            tx_->rec().action = "warn";
            tx_->rec().reason = "user chose to continue";
        }
        http::response<http::string_body> res{http::status::found, version == 10 ? 10u : 11u};
        res.set(http::field::location, url);
        res.set(http::field::cache_control, "no-store");
        res.keep_alive(false);
        res.prepare_payload();
        lowest(client_).expires_after(gw_.cfg.io);
        auto [ec, n] = co_await http::async_write(client_, res, use_nothrow);
        bump(gw_.counters.bytes_out, n);
        co_return false;
    }

    net::awaitable<void> page(const PageInfo& given, unsigned version) {
        PageInfo info = given;
        info.conn_id = cid_;
        co_await write_page(client_, gw_, info, version, tx_);
    }

    // 101 Switching Protocols: forward the head, then relay bytes both ways until one side closes.
    net::awaitable<bool> switch_protocols(http::response_parser<http::buffer_body>& rp, bool upgrade_requested,
                                          const Authority& origin) {
        using namespace net::experimental::awaitable_operators;
        if (!upgrade_requested) {
            drop_upstream();
            PageInfo info{502, "The site sent an invalid response", "101 Switching Protocols without an Upgrade request",
                       origin.host_port(), "upstream_bad_response"};
            co_await page(info, 11);
            co_return false;
        }
        http::response<http::empty_body> res{http::status::switching_protocols, 11};
        for (const auto& f : rp.get()) {
            if (f.name() != http::field::connection && f.name() != http::field::keep_alive)
                res.insert(f.name_string(), f.value());
        }
        res.set(http::field::connection, "upgrade");
        lowest(client_).expires_after(gw_.cfg.io);
        auto [ec, n] = co_await http::async_write(client_, res, use_nothrow);
        bump(gw_.counters.bytes_out, n);
        if (ec) co_return false;
        bump(gw_.counters.upgrades);
        // Bytes already read past either head belong to the new protocol.
        if (ubuf_.size()) {
            auto [e1, m1] = co_await net::async_write(client_, ubuf_.data(), use_nothrow);
            bump(gw_.counters.bytes_out, m1);
            if (e1) co_return false;
            ubuf_.clear();
        }
        if (cbuf_.size()) {
            auto [e2, m2] = co_await net::async_write(*upstream_, cbuf_.data(), use_nothrow);
            if (e2) co_return false;
            cbuf_.clear();
        }
        co_await (pump(client_, *upstream_, gw_, gw_.counters.bytes_in, throttle_, Throttle::from_client) ||
                  pump(*upstream_, client_, gw_, gw_.counters.bytes_out, throttle_, Throttle::to_client));
        drop_upstream();
        co_return false;
    }

    Gateway& gw_;
    Client& client_;
    beast::flat_buffer& cbuf_;
    uint64_t cid_;
    std::string client_ip_;
    Connect connect_;
    audit::Record base_;
    TxAudit* tx_ = nullptr;  // the transaction in progress, for page()
    std::optional<Upstream> upstream_;
    std::string key_;
    bool personal_ = false;  // connection-bound authentication seen: never handed to another client
    beast::flat_buffer ubuf_;
    std::string response_error_;
    Throttle* throttle_ = nullptr;
    Route route_;  // how upstream_ was connected
};

}  // namespace vigil::gateway

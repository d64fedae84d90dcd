// Internal: the HTTP relay phase — one client connection's sequence of transactions to origins,
// with the origin connection kept alive between them. Generic over plain and TLS streams.
#pragma once

#include <functional>

#include <boost/asio/experimental/awaitable_operators.hpp>

#include "gateway/http_io.hpp"
#include "gateway/inspection.hpp"
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
        if (!upstream_ || personal_ || ubuf_.size()) return std::nullopt;  // bytes past the response: not clean
        key = key_;
        lease = route_.lease;
        std::optional<Upstream> out(std::move(*upstream_));
        drop_upstream();
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
        if (auto ce = res[http::field::content_encoding]; !ce.empty() && !beast::iequals(ce, "identity")) return nullptr;
        if (!compressible_type(res[http::field::content_type])) return nullptr;
        if (has_no_transform(res[http::field::cache_control])) return nullptr;
        auto coding = accepted_coding(req[http::field::accept_encoding]);
        return coding ? Compressor::make(*coding) : nullptr;
    }

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
        auto expect = in[http::field::expect];
        if (!expect.empty() && !iequals(expect, "100-continue")) {
            {
                PageInfo info{417, "Unsupported expectation", "Vigil only supports \"Expect: 100-continue\"",
                           origin.host_port(), "bad_expect"};
                co_await page(info, version);
            }
            co_return false;
        }

        // The cache (docs/caching.md): a fresh stored response is the answer; a stale one with
        // a validator is revalidated; anything else goes to the origin and may be stored.
        CacheUse cu;
        if (gw_.cache && !upgrade) cu = cache_lookup(in, url, scan && !has_body);
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
            if (hop.contains(f.name_string()) || f.name() == http::field::host || f.name() == http::field::expect)
                continue;
            out.insert(f.name_string(), f.value());
        }
        out.set(http::field::host, host_header(origin, default_port_is_443));
        if (connection_bound_auth(in[http::field::authorization])) personal_ = true;
        if (upgrade) {
            out.set(http::field::upgrade, in[http::field::upgrade]);
            out.set(http::field::connection, "upgrade");
        }
        if (auto len = req_parser.content_length()) out.content_length(*len);
        else if (req_parser.chunked()) out.chunked(true);
        if (cu.entry) {
            // Revalidating: our validators replace the client's own (its condition is answered
            // from the cache once the origin has said whether the stored response still holds).
            out.erase(http::field::if_none_match);
            out.erase(http::field::if_modified_since);
            if (auto etag = cache::field(cu.entry->headers, "etag"); !etag.empty()) out.set(http::field::if_none_match, etag);
            if (auto lm = cache::field(cu.entry->headers, "last-modified"); !lm.empty())
                out.set(http::field::if_modified_since, lm);
        }
        const double request_time = epoch_seconds();

        // A kept-alive origin connection may have been closed by the origin meanwhile: a request
        // without a body is retried once on a fresh connection; one with a body is not (not replayable).
        std::optional<http::response_parser<http::buffer_body>> rp;
        for (int attempt = 0;; ++attempt) {
            // An idle connection the origin has closed meanwhile is not tried (a request with a
            // body could not be retried on a fresh one).
            const bool reused = upstream_.has_value() && key_ == origin.host_port() &&
                                idle_socket_usable(lowest(*upstream_).socket().native_handle());
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
            if (scan && has_body) req_scan = rules->scan_body(inspect::Target::request_body, in[http::field::content_encoding]);
            // Request bodies are always held up to hold_bytes, so a framing error there reaches no origin.
            // A parent proxy takes the request in absolute-form; an origin in origin-form.
            out.target(route_.via_parent() ? full_url(scheme, origin, target) : target);
            BodyOptions upload{req_scan.get(), gw_.cfg.hold_bytes, &tx.rec().bytes_from_client, throttle_};
            auto sent = co_await relay_body(client_, cbuf_, req_parser, *upstream_, out, gw_, upload);
            if (req_scan) tx.rec().scan_result = req_scan->scan_result();
            if (sent == RelayError::read) co_return false;  // the client went away mid-request
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
                auto got = co_await read_response_head(rp, in.method() == http::verb::head);
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
                {
                    PageInfo info{502, "The site closed the connection",
                               "the origin server closed the connection while the request was being sent",
                               origin.host_port(), "upstream_closed"};
                    co_await page(info, version);
                }
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
            {
                PageInfo info{502, "The site sent an invalid response", "invalid response framing: " + *bad,
                           origin.host_port(), "upstream_bad_response"};
                co_await page(info, version);
            }
            co_return false;
        }
        if (status == 101) co_return co_await switch_protocols(*rp, upgrade, origin);
        if (cu.invalidate && status < 400) invalidate_cached(scheme, origin, url, head);
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
                auto fields = stored_fields(head.base());
                auto vary = cache::vary_values(fields, cu.request);
                const auto length = rp->content_length();
                std::string why = cache::not_storable("GET", cu.request, status, fields);
                if (why.empty() && !vary) why = "vary";
                if (why.empty() && length && *length > gw_.cache->options().max_object_bytes) why = "too large";
                if (!why.empty()) log_debug("cache: not storing " + url + ": " + why, cid_);
                if (why.empty()) {
                    to_store.emplace();
                    to_store->url = url;
                    to_store->status = status;
                    to_store->reason = std::string(head.reason());
                    to_store->headers = std::move(fields);
                    to_store->vary = std::move(*vary);
                    to_store->request_time = request_time;
                    to_store->response_time = epoch_seconds();
                    to_store->ruleset = rules->version();
                    capture.limit = gw_.cache->options().max_object_bytes;
                }
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
            if (!bodyless) res_scan = rules->scan_body(inspect::Target::response_body, head[http::field::content_encoding]);
        }
        // Responses are held only when scanned: unscanned downloads stream at once.
        BodyOptions download{res_scan.get(), res_scan ? gw_.cfg.hold_bytes : 0, &tx.rec().bytes_to_client, throttle_,
                             compressor.get(), to_store ? &capture : nullptr};
        auto relayed = co_await relay_body(*upstream_, ubuf_, *rp, client_, res, gw_, download);
        if (compressor && relayed == RelayError::none) count_compressed(*compressor);
        if (res_scan) tx.rec().scan_result = res_scan->scan_result();
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
            if (res_scan->scan_result().rfind("unscanned", 0) == 0) bump(gw_.counters.unscanned);
            if (res_scan->scan_result() == "error") bump(gw_.counters.scan_errors);
        }
        note_verdict(gw_, verdict, url, cid_);
        tx.verdict(verdict);
        if (relayed == RelayError::malformed_before_head) {
            bump(gw_.counters.upstream_bad_response);
            PageInfo info{502, "The site sent an invalid response", "the origin's response body is not valid HTTP/1.1 framing",
                          url, "upstream_bad_response"};
            co_await page(info, version);
            co_return false;
        }
        if (relayed != RelayError::none) {
            log_info("transfer from " + origin.host_port() + " aborted: " +
                         (relayed == RelayError::write ? "client connection failed" : "origin connection failed or sent bad framing"),
                     cid_);
            co_return false;
        }
        // Stored only when complete and scanned clean (a bodiless response has nothing to scan).
        if (to_store && !capture.overflow && verdict.action == inspect::Action::allow &&
            (!res_scan || res_scan->scan_result() == "clean")) {
            to_store->body_size = capture.bytes.size();
            to_store->body = std::make_shared<const std::string>(std::move(capture.bytes));
            gw_.cache->put(std::move(*to_store));
        } else if (to_store) {
            log_debug("cache: not storing " + url + ": " +
                          (capture.overflow ? "larger than cache.max_object_bytes"
                                            : "not scanned clean (" + (res_scan ? res_scan->scan_result() : "") + ")"),
                      cid_);
        }
        co_return client_keep_alive;
    }

private:
    enum class ResponseHead { ok, closed_early, timeout, bad };

    // What the cache does for one request.
    struct CacheUse {
        bool asked = false;        // the cache was consulted (HIT, MISS or REVALIDATED)
        bool store = false;        // the origin's response may be stored
        bool invalidate = false;   // an unsafe method: a success invalidates the URL
        bool fresh = false;        // `entry` may be served as it is
        bool only_if_cached = false;
        std::shared_ptr<const cache::Entry> entry;  // to serve (fresh) or to revalidate
        cache::Fields request;     // the client's request fields
    };

    static double epoch_seconds() {
        return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    }

    // Only requests the cache may answer are looked up: inspected (not bypassed), GET or HEAD
    // without a body, no range or write precondition, no connection-bound sign-in.
    template <class Request>
    CacheUse cache_lookup(const Request& in, const std::string& url, bool eligible) {
        CacheUse cu;
        const auto m = in.method();
        cu.invalidate = m != http::verb::get && m != http::verb::head && m != http::verb::options && m != http::verb::trace;
        if (!eligible || (m != http::verb::get && m != http::verb::head) || personal_) return cu;
        if (in.count(http::field::range) || in.count(http::field::if_match) || in.count(http::field::if_unmodified_since) ||
            in.count(http::field::if_range))
            return cu;
        cu.asked = true;
        for (const auto& f : in) cu.request.emplace_back(std::string(f.name_string()), std::string(f.value()));
        cu.store = m == http::verb::get;
        const auto req = cache::parse_cache_control(cache::field(cu.request, "cache-control"));
        cu.only_if_cached = req.only_if_cached;
        const bool pragma_no_cache = !cache::has_field(cu.request, "cache-control") &&
                                     lower(cache::field(cu.request, "pragma")).find("no-cache") != std::string::npos;
        cu.entry = gw_.cache->find(url, cu.request);
        if (!cu.entry) return cu;
        const auto res = cache::parse_cache_control(cache::field(cu.entry->headers, "cache-control"));
        const double age = cache::current_age(*cu.entry, epoch_seconds());
        const double life = cache::freshness_lifetime(*cu.entry);
        bool acceptable = !req.max_age || age <= double(*req.max_age);
        if (age < life) {
            acceptable = acceptable && (!req.min_fresh || life - age >= double(*req.min_fresh));
        } else {
            // Stale: only when the client accepts staleness and the origin did not forbid it.
            acceptable = acceptable && !(res.must_revalidate || res.proxy_revalidate || res.s_maxage) &&
                         (req.max_stale_any || (req.max_stale && age - life <= double(*req.max_stale)));
        }
        cu.fresh = acceptable && !req.no_cache && !pragma_no_cache && !res.no_cache;
        if (cu.fresh) cu.only_if_cached = false;
        else if (!cache::has_field(cu.entry->headers, "etag") && !cache::has_field(cu.entry->headers, "last-modified"))
            cu.entry.reset();  // nothing to revalidate with: fetched again
        return cu;
    }

    // The origin's fields as the cache keeps them: end to end, without framing.
    static cache::Fields stored_fields(const http::fields& head) {
        HopByHop hop(head);
        cache::Fields out;
        for (const auto& f : head) {
            if (hop.contains(f.name_string()) || f.name() == http::field::transfer_encoding ||
                f.name() == http::field::content_length)
                continue;
            out.emplace_back(std::string(f.name_string()), std::string(f.value()));
        }
        return out;
    }

    // After a successful unsafe request: the URL and the same-origin Location and
    // Content-Location it names are no longer what the cache holds (RFC 9111 4.4).
    template <class Head>
    void invalidate_cached(const std::string& scheme, const Authority& origin, const std::string& url, const Head& head) {
        gw_.cache->invalidate(url);
        for (auto name : {http::field::location, http::field::content_location}) {
            const std::string v(head[name]);
            if (v.empty()) continue;
            if (v[0] == '/' && v.substr(0, 2) != "//") {
                gw_.cache->invalidate(full_url(scheme, origin, v));
            } else if (auto a = parse_absolute_url(v);
                       a && a->scheme == scheme && a->authority.host == origin.host && a->authority.port == origin.port) {
                gw_.cache->invalidate(full_url(scheme, a->authority, a->target));
            }
        }
    }

    // A response sent compressed in full: the bytes saved show on /metrics.
    void count_compressed(const Compressor& c) {
        bump(gw_.counters.compressed);
        bump(gw_.counters.compress_in_bytes, c.bytes_in());
        bump(gw_.counters.compress_out_bytes, c.bytes_out());
    }

    // The client gets another representation: its own encoding, chunked, a weak validator,
    // and caches told that it varies with Accept-Encoding.
    static void compressed_head(http::response<http::buffer_body>& res, const Compressor& c) {
        res.erase(http::field::content_length);
        res.erase(http::field::accept_ranges);
        res.chunked(true);
        res.set(http::field::content_encoding, coding_name(c.coding()));
        if (auto etag = res[http::field::etag]; !etag.empty() && etag.rfind("W/", 0) != 0)
            res.set(http::field::etag, "W/" + std::string(etag));
        if (auto vary = res[http::field::vary]; vary.empty()) res.set(http::field::vary, "Accept-Encoding");
        else if (vary != "*") res.set(http::field::vary, std::string(vary) + ", Accept-Encoding");
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
            auto scanner = rules.scan_body(inspect::Target::response_body, res[http::field::content_encoding]);
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
        if (compressor) count_compressed(*compressor);
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

    // NTLM and Negotiate authenticate the connection, not the request.
    static bool connection_bound_auth(std::string_view v) {
        return v.size() >= 4 && (iequals(v.substr(0, 4), "NTLM") || (v.size() >= 9 && iequals(v.substr(0, 9), "Negotiate")));
    }

    static std::string host_header(const Authority& a, bool default_443) {
        std::string h = a.host.find(':') != std::string::npos ? "[" + a.host + "]" : a.host;
        if (a.port != (default_443 ? 443 : 80)) h += ":" + std::to_string(a.port);
        return h;
    }

    net::awaitable<void> page(const PageInfo& given, unsigned version) {
        PageInfo info = given;
        info.conn_id = cid_;
        co_await write_page(client_, gw_, info, version, tx_);
    }

    // Reads the final response head, skipping interim 1xx responses other than 101.
    net::awaitable<ResponseHead> read_response_head(std::optional<http::response_parser<http::buffer_body>>& rp,
                                                    bool head_request) {
        for (;;) {
            rp.emplace();
            rp->header_limit(static_cast<std::uint32_t>(gw_.cfg.max_header_bytes));
            rp->body_limit(boost::none);
            if (head_request) rp->skip(true);
            lowest(*upstream_).expires_after(gw_.cfg.io);
            auto [ec, n] = co_await http::async_read_header(*upstream_, ubuf_, *rp, use_nothrow);
            if (ec == beast::error::timeout) {
                bump(gw_.counters.upstream_timeout);
                co_return ResponseHead::timeout;
            }
            if (ec) {
                bool early = n == 0 && (ec == http::error::end_of_stream || ec == net::error::eof ||
                                        ec == net::error::connection_reset || ec == net::ssl::error::stream_truncated);
                if (!early) bump(gw_.counters.upstream_bad_response);
                response_error_ = early ? "the origin server closed the connection without answering"
                                        : "the origin server's response could not be read: " + ec.message();
                co_return early ? ResponseHead::closed_early : ResponseHead::bad;
            }
            int status = rp->get().result_int();
            if (status >= 100 && status < 200 && status != 101) continue;
            co_return ResponseHead::ok;
        }
    }

    // 101 Switching Protocols: forward the head, then relay bytes both ways until one side closes.
    net::awaitable<bool> switch_protocols(http::response_parser<http::buffer_body>& rp, bool upgrade_requested,
                                          const Authority& origin) {
        using namespace net::experimental::awaitable_operators;
        if (!upgrade_requested) {
            drop_upstream();
            {
                PageInfo info{502, "The site sent an invalid response", "101 Switching Protocols without an Upgrade request",
                           origin.host_port(), "upstream_bad_response"};
                co_await page(info, 11);
            }
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

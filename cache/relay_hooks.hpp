// What the relay asks of the response cache (docs/caching.md): which requests it may answer,
// what a response stores, what a success invalidates.
#pragma once

#include <pthread.h>

#include <chrono>
#include <optional>
#include <string>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <boost/beast/http.hpp>

#include "cache/store.hpp"
#include "wire/context.hpp"
#include "wire/framing.hpp"

namespace vigil::cache {

namespace net = boost::asio;
namespace http = boost::beast::http;
using io::AbsoluteUrl;
using io::Authority;
using io::full_url;
using io::parse_absolute_url;
using wire::HopByHop;

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

inline double epoch_seconds() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Only requests the cache may answer are looked up: `eligible` (inspected, not bypassed, no
// connection-bound sign-in on this connection), GET or HEAD without a body, no range or write
// precondition.
template <class Request>
CacheUse cache_lookup(cache::Store& store, const Request& in, const std::string& url, bool eligible) {
    CacheUse cu;
    const auto m = in.method();
    cu.invalidate = m != http::verb::get && m != http::verb::head && m != http::verb::options && m != http::verb::trace;
    if (!eligible || (m != http::verb::get && m != http::verb::head)) return cu;
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
    cu.entry = store.find_indexed(url, cu.request);  // the body, if on disk only, is read later
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

// A stored body that is on disk only is read on the gateway's disk threads, so a worker (and
// every connection it serves) never waits for the disk; the caller resumes on its own thread.
// Null when the file is gone or damaged: the request then goes to the origin.
inline net::awaitable<std::shared_ptr<const cache::Entry>> load_cached_body(net::thread_pool& pool, cache::Store& store,
                                                                           std::shared_ptr<const cache::Entry> found) {
    auto read = [&store, found = std::move(found)]() -> net::awaitable<std::shared_ptr<const cache::Entry>> {
        pthread_setname_np(pthread_self(), "vigil-disk");
        co_return store.load_body(found);
    };
    co_return co_await net::co_spawn(pool, std::move(read), net::use_awaitable);
}

// Revalidating: the stored response's validators replace the client's own (the client's
// condition is answered from the cache once the origin has said whether the stored response holds).
template <class Request>
void ask_revalidation(Request& out, const cache::Entry& stored) {
    out.erase(http::field::if_none_match);
    out.erase(http::field::if_modified_since);
    if (auto etag = cache::field(stored.headers, "etag"); !etag.empty()) out.set(http::field::if_none_match, etag);
    if (auto lm = cache::field(stored.headers, "last-modified"); !lm.empty()) out.set(http::field::if_modified_since, lm);
}

// The origin's fields as the cache keeps them: end to end, without framing.
inline cache::Fields stored_fields(const http::fields& head) {
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

// The entry the origin's response becomes, body still to come, when the cache may store it;
// nothing (and a debug line saying why) when it may not.
inline std::optional<cache::Entry> entry_to_store(cache::Store& store, const CacheUse& cu, const std::string& url,
                                                  const http::response_header<>& head, boost::optional<std::uint64_t> length,
                                                  double request_time, int64_t ruleset, uint64_t cid) {
    const int status = head.result_int();
    auto fields = stored_fields(head);
    auto vary = cache::vary_values(fields, cu.request);
    std::string why = cache::not_storable("GET", cu.request, status, fields);
    if (why.empty() && !vary) why = "vary";
    if (why.empty() && length && *length > store.options().max_object_bytes) why = "too large";
    if (!why.empty()) {
        log_debug("cache: not storing " + url + ": " + why, cid);
        return std::nullopt;
    }
    std::optional<cache::Entry> e(std::in_place);
    e->url = url;
    e->status = status;
    e->reason = std::string(head.reason());
    e->headers = std::move(fields);
    e->vary = std::move(*vary);
    e->request_time = request_time;
    e->response_time = epoch_seconds();
    e->ruleset = ruleset;
    return e;
}

// After a successful unsafe request: the URL and the same-origin Location and
// Content-Location it names are no longer what the cache holds (RFC 9111 4.4).
inline void invalidate_cached(cache::Store& store, const std::string& scheme, const Authority& origin,
                              const std::string& url, const http::fields& head) {
    store.invalidate(url);
    for (auto name : {http::field::location, http::field::content_location}) {
        const std::string v(head[name]);
        if (v.empty()) continue;
        if (v[0] == '/' && v.substr(0, 2) != "//") {
            store.invalidate(full_url(scheme, origin, v));
        } else if (auto a = parse_absolute_url(v);
                   a && a->scheme == scheme && a->authority.host == origin.host && a->authority.port == origin.port) {
            store.invalidate(full_url(scheme, a->authority, a->target));
        }
    }
}

}  // namespace vigil::cache

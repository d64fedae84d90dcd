// The HTTP cache's rules (RFC 9111, a shared cache): which responses may be stored, for how
// long, and how they vary (docs/caching.md). The store is in store.hpp. No Asio here.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/counters.hpp"
#include "io/address.hpp"

namespace vigil::cache {

using namespace vigil::core;
using io::iequals;
using io::lower;
using io::trim;

// Header fields as received, in order (name as sent, value).
using Fields = std::vector<std::pair<std::string, std::string>>;

// Every line of field `name` (any case), joined with ", "; "" when absent.
std::string field(const Fields& f, std::string_view name);
bool has_field(const Fields& f, std::string_view name);

struct CacheControl {
    bool no_store = false, no_cache = false, private_ = false, public_ = false, must_revalidate = false,
         proxy_revalidate = false, only_if_cached = false, max_stale_any = false, must_understand = false;
    std::optional<int64_t> max_age, s_maxage, min_fresh, max_stale;
};
// Directives are case-insensitive; a duration that is not a number counts as 0 (stale), a
// quoted one is accepted; the first of repeated directives wins.
CacheControl parse_cache_control(std::string_view value);

// IMF-fixdate, RFC 850 and asctime forms (RFC 9110 5.6.7): seconds since the epoch.
std::optional<int64_t> parse_http_date(std::string_view text);
std::string format_http_date(int64_t t);

// One stored response (one variant of a URL). Immutable once in the store: changes replace it.
struct Entry {
    std::string url;           // the primary key: scheme://host:port/target
    int status = 0;
    std::string reason;
    Fields headers;            // end-to-end fields as the origin sent them (no hop-by-hop, no framing)
    Fields vary;               // per field the response varies on: (lower-case name, request's value)
    double request_time = 0;   // when the request went out / the response came in (epoch seconds)
    double response_time = 0;
    int64_t ruleset = 0;       // the ruleset version the body was scanned clean under
    uint64_t body_size = 0;
    std::shared_ptr<const std::string> body;  // null while only on disk
    std::string id;            // hex digest of url and vary values; the file's name
};

// RFC 9111 4.2.1 for a shared cache: s-maxage, max-age, Expires - Date, else heuristic
// (10% of Date - Last-Modified, at most a day) for heuristically cacheable statuses.
double freshness_lifetime(const Entry& e);
// RFC 9111 4.2.3.
double current_age(const Entry& e, double now);

// Why a response to this request may not be stored, or "" when it may (RFC 9111 3, plus
// stricter rules of ours for a shared cache in front of many users: see docs/caching.md).
std::string not_storable(std::string_view method, const Fields& request, int status, const Fields& response);

// The request's values for the fields the response varies on; nullopt for "Vary: *".
std::optional<Fields> vary_values(const Fields& response, const Fields& request);

// RFC 9111 3.2 / 4.3.4: a stored response's fields updated from a 304 (all but those describing
// the stored representation: Content-Length, -Encoding, -Range, -MD5 and ETag).
Fields updated_fields(const Fields& stored, const Fields& from_304);

// Whether the client's own condition (If-None-Match, else If-Modified-Since) holds for the
// stored response, so the answer is 304 Not Modified (RFC 9110 13.1.2, 13.1.3; weak comparison).
bool not_modified(const Fields& request, const Entry& e);

}  // namespace vigil::cache

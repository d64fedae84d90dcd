// The HTTP cache: RFC 9111 freshness and storage rules (the store is in cache_store.cpp).
#include "cache/freshness.hpp"


#include <algorithm>
#include <charconv>
#include <cstdio>
#include <ctime>


namespace vigil::cache {

std::string field(const Fields& f, std::string_view name) {
    std::string out;
    for (const auto& [n, v] : f) {
        if (!iequals(n, name)) continue;
        if (!out.empty()) out += ", ";
        out += v;
    }
    return out;
}

bool has_field(const Fields& f, std::string_view name) {
    return std::any_of(f.begin(), f.end(), [&](const auto& p) { return iequals(p.first, name); });
}

namespace {

// Splits a list on commas outside quoted strings.
std::vector<std::string_view> split_list(std::string_view v) {
    std::vector<std::string_view> out;
    bool quoted = false;
    size_t start = 0;
    for (size_t i = 0; i <= v.size(); ++i) {
        if (i < v.size() && v[i] == '"') quoted = !quoted;
        if (i == v.size() || (v[i] == ',' && !quoted)) {
            auto item = trim(v.substr(start, i - start));
            if (!item.empty()) out.push_back(item);
            start = i + 1;
        }
    }
    return out;
}

// A delta-seconds value: digits (quoted accepted); anything else is 0; huge values are capped.
int64_t delta_seconds(std::string_view v) {
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
    if (v.empty() || v.find_first_not_of("0123456789") != std::string_view::npos) return 0;
    if (v.size() > 10) return int64_t(1) << 31;
    int64_t n = 0;
    std::from_chars(v.data(), v.data() + v.size(), n);
    return std::min<int64_t>(n, int64_t(1) << 31);
}

bool understood_status(int status) {
    switch (status) {
        case 200: case 203: case 204: case 300: case 301: case 302: case 303: case 307: case 308:
        case 400: case 403: case 404: case 405: case 410: case 414: case 451: case 500: case 501:
        case 502: case 503: case 504:
            return true;
        default:
            return false;
    }
}

bool heuristically_cacheable(int status) {
    switch (status) {
        case 200: case 203: case 204: case 300: case 301: case 308: case 404: case 405: case 410: case 414: case 501:
            return true;
        default:
            return false;
    }
}

double date_of(const Entry& e) {
    auto d = parse_http_date(field(e.headers, "date"));
    return d ? double(*d) : e.response_time;
}

}  // namespace

CacheControl parse_cache_control(std::string_view value) {
    CacheControl cc;
    for (auto item : split_list(value)) {
        auto eq = item.find('=');
        std::string name = lower(trim(item.substr(0, eq)));
        std::string_view arg = eq == std::string_view::npos ? std::string_view() : trim(item.substr(eq + 1));
        auto seconds = [&](std::optional<int64_t>& slot) {
            if (!slot) slot = delta_seconds(arg);
        };
        if (name == "no-store") cc.no_store = true;
        else if (name == "no-cache") cc.no_cache = true;  // qualified forms: the whole response
        else if (name == "private") cc.private_ = true;   // likewise
        else if (name == "public") cc.public_ = true;
        else if (name == "must-revalidate") cc.must_revalidate = true;
        else if (name == "proxy-revalidate") cc.proxy_revalidate = true;
        else if (name == "only-if-cached") cc.only_if_cached = true;
        else if (name == "must-understand") cc.must_understand = true;
        else if (name == "max-age") seconds(cc.max_age);
        else if (name == "s-maxage") seconds(cc.s_maxage);
        else if (name == "min-fresh") seconds(cc.min_fresh);
        else if (name == "max-stale") {
            if (arg.empty()) cc.max_stale_any = true;
            else seconds(cc.max_stale);
        }
    }
    return cc;
}

std::optional<int64_t> parse_http_date(std::string_view text) {
    std::string s(trim(text));
    if (s.empty() || s.size() > 64) return std::nullopt;
    static const char* formats[] = {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT", "%a %b %d %H:%M:%S %Y"};
    for (const char* f : formats) {
        std::tm tm{};
        const char* end = strptime(s.c_str(), f, &tm);
        if (!end || *end) continue;
        return int64_t(timegm(&tm));
    }
    return std::nullopt;
}

std::string format_http_date(int64_t t) {
    std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    return buf;
}

double freshness_lifetime(const Entry& e) {
    auto cc = parse_cache_control(field(e.headers, "cache-control"));
    if (cc.s_maxage) return double(*cc.s_maxage);
    if (cc.max_age) return double(*cc.max_age);
    if (has_field(e.headers, "expires")) {
        auto expires = parse_http_date(field(e.headers, "expires"));
        if (!expires) return 0;  // invalid, e.g. "0": already expired
        return std::max(0.0, double(*expires) - date_of(e));
    }
    if (!heuristically_cacheable(e.status) && !cc.public_) return 0;
    if (auto lm = parse_http_date(field(e.headers, "last-modified"))) {
        double since = date_of(e) - double(*lm);
        if (since > 0) return std::min(since / 10, 86400.0);
    }
    return 0;
}

double current_age(const Entry& e, double now) {
    double age_value = 0;
    if (has_field(e.headers, "age")) {
        // One non-negative integer; anything else (a list, a sign, a fraction) is taken as
        // old: the response is stale rather than trusted.
        const std::string age_field = field(e.headers, "age");
        const auto age = trim(age_field);
        age_value = !age.empty() && age.find_first_not_of("0123456789") == std::string_view::npos
                        ? double(delta_seconds(age))
                        : double(int64_t(1) << 31);
    }
    const double apparent = std::max(0.0, e.response_time - date_of(e));
    const double corrected_age = age_value + (e.response_time - e.request_time);
    const double initial = std::max(apparent, corrected_age);
    return initial + std::max(0.0, now - e.response_time);
}

std::string not_storable(std::string_view method, const Fields& request, int status, const Fields& response) {
    if (method != "GET") return "method";
    if (status < 200 || status == 206 || status == 304 || status > 599) return "status";
    const auto req = parse_cache_control(field(request, "cache-control"));
    const auto res = parse_cache_control(field(response, "cache-control"));
    if (res.must_understand) {
        // Stored only when the status is one we understand, and then no-store is overridden.
        if (!understood_status(status)) return "must-understand";
    } else if (res.no_store) {
        return "no-store";
    }
    if (req.no_store) return "no-store";
    if (res.private_) return "private";
    // Shared-cache rules of ours: Vigil serves many users, so a response to a request that
    // carried credentials or cookies is stored only when the origin says it is for everyone,
    // and one that sets a cookie never is.
    if (has_field(request, "authorization") && !(res.public_ || res.s_maxage || res.must_revalidate))
        return "authorization";
    if (has_field(request, "cookie") && !(res.public_ || res.s_maxage)) return "cookie";
    if (has_field(response, "set-cookie")) return "set-cookie";
    auto vary = field(response, "vary");
    for (auto v : split_list(vary))
        if (v == "*") return "vary";
    const bool explicit_expiry = res.s_maxage || res.max_age || has_field(response, "expires");
    if (!explicit_expiry && !res.public_ && !heuristically_cacheable(status)) return "no freshness";
    const bool validator = has_field(response, "etag") || has_field(response, "last-modified");
    if (!explicit_expiry && !validator && !res.public_) return "no freshness";
    return "";
}

std::optional<Fields> vary_values(const Fields& response, const Fields& request) {
    Fields out;
    const std::string names = field(response, "vary");
    for (auto name : split_list(names)) {
        if (name == "*") return std::nullopt;
        std::string n = lower(name);
        if (std::any_of(out.begin(), out.end(), [&](const auto& p) { return p.first == n; })) continue;
        // Normalised: list members trimmed and joined with ", ".
        std::string v;
        const std::string given = field(request, n);
        for (auto m : split_list(given)) v += (v.empty() ? "" : ", ") + std::string(m);
        out.emplace_back(n, has_field(request, n) ? v : std::string("\x01" "absent"));
    }
    return out;
}

Fields updated_fields(const Fields& stored, const Fields& from_304) {
    // Fields that describe the stored representation itself are kept as they are.
    auto kept = [](const std::string& name) {
        for (const char* n : {"content-length", "content-encoding", "content-range", "content-md5", "etag"})
            if (iequals(name, n)) return true;
        return false;
    };
    Fields out;
    for (const auto& f : stored)
        if (kept(f.first) || !has_field(from_304, f.first)) out.push_back(f);
    for (const auto& f : from_304)
        if (!kept(f.first)) out.push_back(f);
    return out;
}

bool not_modified(const Fields& request, const Entry& e) {
    if (has_field(request, "if-none-match")) {
        auto opaque = [](std::string_view tag) { return tag.substr(0, 2) == "W/" ? tag.substr(2) : tag; };
        const std::string etag = field(e.headers, "etag"), given = field(request, "if-none-match");
        if (etag.empty()) return false;
        for (auto tag : split_list(given))
            if (tag == "*" || opaque(tag) == opaque(trim(etag))) return true;
        return false;
    }
    if (has_field(request, "if-modified-since")) {
        // Without Last-Modified, the stored response's Date (or when it arrived) stands in
        // for it (RFC 9111 4.3.2).
        auto since = parse_http_date(field(request, "if-modified-since"));
        auto lm = parse_http_date(field(e.headers, "last-modified"));
        const double modified = lm ? double(*lm) : date_of(e);
        return since && modified <= double(*since);
    }
    return false;
}

}  // namespace vigil::cache

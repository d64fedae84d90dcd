// vigil-audit's filter flags -> WHERE clause with parameters.
#include "audit/filter.hpp"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <set>
#include <string_view>

namespace vigil::audit {
namespace {

bool all_digits(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

std::string get(const std::map<std::string, std::string>& o, const std::string& k) {
    auto it = o.find(k);
    return it == o.end() ? "" : it->second;
}

}  // namespace

int64_t parse_time(const std::string& flag, const std::string& v, int64_t now_ms) {
    if (v.empty()) throw FilterError(flag + " needs a time");
    const std::string_view units = "smhdw";
    const size_t unit = units.find(v.back());
    if (unit != std::string_view::npos && v.size() > 1 && all_digits(std::string_view(v).substr(0, v.size() - 1))) {
        static constexpr int64_t kUnitMs[] = {1000, 60'000, 3'600'000, 86'400'000, 604'800'000};
        static constexpr int64_t kMaxBackMs = int64_t(100) * 366 * 86'400'000;
        // At most 13 digits before the unit keeps n * unit below 2^63; longer is out of range anyway.
        const std::string digits = v.substr(0, v.size() - 1);
        const int64_t n = digits.size() > 13 ? kMaxBackMs : std::stoll(digits);
        const int64_t back = n > kMaxBackMs / kUnitMs[unit] ? kMaxBackMs + 1 : n * kUnitMs[unit];
        if (back > kMaxBackMs) throw FilterError(flag + ": \"" + v + "\" reaches back more than 100 years");
        return now_ms - back;
    }
    for (const char* fmt : {"%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d"}) {
        std::tm tm{};
        const char* end = strptime(v.c_str(), fmt, &tm);
        // A NUL inside the value would end strptime's view early: the whole value must be read.
        if (end && *end == '\0' && end == v.c_str() + v.size()) return static_cast<int64_t>(timegm(&tm)) * 1000;
    }
    throw FilterError(flag + ": \"" + v + "\" is neither a relative time (30m, 2h, 7d) nor an ISO-8601 date");
}

Where build_filters(const std::map<std::string, std::string>& o, int64_t now_ms) {
    static const std::set<std::string> actions = {"allow", "block", "warn", "monitor", "bypass", "refuse", "error", "aborted",
                                                  "start", "stop", "unclean-stop", "ruleset", "ruleset-failed"};
    static const std::set<std::string> kinds = {"transaction", "refused", "splice", "system", "checkpoint"};
    auto has = [&](const std::string& k) { return o.count(k) > 0; };
    Where w;
    if (has("--since")) w.add("ts_ms >= CAST(? AS INTEGER)", std::to_string(parse_time("--since", get(o, "--since"), now_ms)));
    if (has("--until")) w.add("ts_ms < CAST(? AS INTEGER)", std::to_string(parse_time("--until", get(o, "--until"), now_ms)));
    if (has("--user")) w.add("user = ?", get(o, "--user"));
    if (has("--txid")) w.add("txid = ?", get(o, "--txid"));
    // grp holds every group, comma-separated: a whole item matches, never a part of a name.
    if (has("--group")) {
        if (get(o, "--group").empty() || get(o, "--group").find(',') != std::string::npos)
            throw FilterError("--group: \"" + get(o, "--group") + "\" is not a group name");
        w.add("instr(',' || grp || ',', ?) > 0", "," + get(o, "--group") + ",");
    }
    if (has("--client")) w.add("client_ip = ?", get(o, "--client"));
    if (has("--host")) {
        std::string h = get(o, "--host");
        std::transform(h.begin(), h.end(), h.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (h.empty() || h.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789.-:[]") != std::string::npos)
            throw FilterError("--host: \"" + get(o, "--host") + "\" is not a host name");
        w.add("(host = ?", h);
        w.sql += " OR host LIKE ?)";  // names below it; no LIKE wildcards can occur in h
        w.params.push_back("%." + h);
    }
    if (has("--action")) {
        if (!actions.count(get(o, "--action")))
            throw FilterError("--action: unknown action \"" + get(o, "--action") +
                              "\" (allow, block, warn, monitor, bypass, refuse, error, aborted)");
        w.add("action = ?", get(o, "--action"));
    }
    if (has("--kind")) {
        if (!kinds.count(get(o, "--kind"))) throw FilterError("--kind: unknown kind \"" + get(o, "--kind") + "\"");
        w.add("kind = ?", get(o, "--kind"));
    }
    if (has("--category")) w.add("category = ?", get(o, "--category"));
    if (has("--rule")) w.add("rule = ?", get(o, "--rule"));
    if (has("--status")) {
        const std::string s = get(o, "--status");
        if (!all_digits(s) || s.size() > 3) throw FilterError("--status expects an HTTP status number");
        w.add("status = CAST(? AS INTEGER)", s);
    }
    if (has("--url-contains")) w.add("instr(url, ?) > 0", get(o, "--url-contains"));
    if (has("--cache")) {
        const std::string c = get(o, "--cache");
        if (c != "HIT" && c != "MISS" && c != "REVALIDATED")
            throw FilterError("--cache: expected HIT, MISS or REVALIDATED, not \"" + c + "\"");
        w.add("cache = ?", c);
    }
    return w;
}

}  // namespace vigil::audit

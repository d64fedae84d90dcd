// The filters of vigil-audit's query, stats and export (--since, --user, --host, ...) turned
// into a SQL WHERE clause with bound parameters: user text never becomes SQL.
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace vigil::audit {

// A filter value that cannot be used; the message names the flag and the value.
class FilterError : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

struct Where {
    std::string sql = " WHERE 1=1";
    std::vector<std::string> params;
    void add(const std::string& clause, const std::string& v) {
        sql += " AND " + clause;
        params.push_back(v);
    }
};

// A relative time ("30m", "2h", "7d", "1w": before now_ms) or an ISO-8601 date or time (UTC),
// as ms since the epoch. Relative times reach back at most 100 years.
int64_t parse_time(const std::string& flag, const std::string& value, int64_t now_ms);

// `options` maps a flag ("--since") to its value; flags that are not filters are ignored.
Where build_filters(const std::map<std::string, std::string>& options, int64_t now_ms);

}  // namespace vigil::audit

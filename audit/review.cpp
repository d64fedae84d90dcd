// The questions review asks of the audit log: counts by dimension (roll-ups for whole hours,
// rows for the rest), and proof that neither the rows nor the roll-ups were edited.
#include "audit/store.hpp"

#include <algorithm>
#include <array>
#include <map>
#include <set>
#include <unordered_map>

#include "audit/schema.hpp"

namespace vigil::audit {

using namespace schema;

namespace {

void add_rows(sqlite3* db, const std::string& sql, const std::vector<int64_t>& params, std::map<std::string, StatRow>& out) {
    Stmt st(db, sql);
    for (size_t i = 0; i < params.size(); ++i) st.bind(static_cast<int>(i + 1), params[i]);
    while (st.step()) {
        StatRow& r = out[st.text(0)];
        r.count += st.integer(1);
        r.bytes_in += st.integer(2);
        r.bytes_out += st.integer(3);
        r.blocked += st.integer(4);
    }
}

}  // namespace

std::map<std::string, StatRow> Store::stats(const std::string& dim, int64_t since_ms, int64_t until_ms) const {
    static const std::set<std::string> dims = {"host", "category", "user", "rule", "action", "hour"};
    if (!dims.count(dim)) throw AuditError("stats: unknown dimension \"" + dim + "\"");
    const bool by_hour = dim == "hour";
    // An hour is keyed by its number here; the caller formats it.
    const std::string key = by_hour ? "CAST(ts_ms / 3600000 AS TEXT)" : dim;
    const std::string raw = "SELECT " + key + ", count(*), sum(bytes_from_client), sum(bytes_to_client), "
                            "sum(action = 'block') FROM records WHERE " + kCounted +
                            " AND ts_ms >= ? AND ts_ms < ? GROUP BY 1";
    std::map<std::string, StatRow> out;
    constexpr int64_t kHour = 3'600'000;
    // Whole hours inside [since, until) from the roll-ups; the partial hours at either end
    // from the rows themselves.
    const int64_t first = since_ms <= 0 ? 0 : (since_ms + kHour - 1) / kHour;  // first whole hour
    const int64_t end = until_ms / kHour;                                       // past the last whole hour
    if (!has_rollup_ || first >= end) {
        add_rows(db_, raw, {since_ms, until_ms}, out);
        return out;
    }
    // `dim` is one of the fixed names above, never user text; each counted record has
    // exactly one action, so the action rows sum to the records of an hour.
    add_rows(db_, "SELECT " + std::string(by_hour ? "CAST(hour AS TEXT)" : "key") +
                      ", sum(n), sum(bytes_in), sum(bytes_out), sum(blocked) FROM rollup WHERE dim = '" +
                      (by_hour ? std::string("action") : dim) + "' AND hour >= ? AND hour < ? GROUP BY 1",
             {first, end}, out);
    add_rows(db_, raw, {since_ms, first * kHour}, out);
    add_rows(db_, raw, {end * kHour, until_ms}, out);
    return out;
}

namespace {

// Roll-up sums derived from the rows, keyed by dimension, hour and key in one string
// ("<dim>\n<hour>\n<key>") so that a lookup with a reused key allocates nothing.
struct Sums {
    int64_t n = 0, bytes_in = 0, bytes_out = 0, blocked = 0;
    bool seen = false;  // a roll-up row matched it
};

size_t column_index(const char* name) {
    const auto& cols = record_columns();
    return static_cast<size_t>(std::find(cols.begin(), cols.end(), name) - cols.begin());
}

// Compares the roll-up table with the sums: the first row that differs or is missing.
std::string compare_rollups(sqlite3* db, std::unordered_map<std::string, Sums>& derived) {
    Stmt st(db, "SELECT dim, hour, key, n, bytes_in, bytes_out, blocked FROM rollup ORDER BY dim, hour, key");
    std::string key;
    while (st.step()) {
        key.assign(st.text_view(0)).append("\n").append(std::to_string(st.integer(1))).append("\n").append(st.text_view(2));
        auto it = derived.find(key);
        if (it == derived.end() || it->second.n != st.integer(3) || it->second.bytes_in != st.integer(4) ||
            it->second.bytes_out != st.integer(5) || it->second.blocked != st.integer(6))
            return "the " + st.text(0) + " roll-up for \"" + st.text(2) + "\" in hour " + std::to_string(st.integer(1)) +
                   " does not match the records";
        it->second.seen = true;
    }
    std::vector<std::string> missing;
    for (const auto& [k, sums] : derived)
        if (!sums.seen) missing.push_back(k);
    if (missing.empty()) return "";
    const std::string& first = *std::min_element(missing.begin(), missing.end());
    const size_t a = first.find('\n'), b = first.find('\n', a + 1);
    return "the " + first.substr(0, a) + " roll-up for \"" + first.substr(b + 1) + "\" in hour " +
           first.substr(a + 1, b - a - 1) + " is missing for records that exist";
}

// The same check by SQL, for a log whose roll-ups are too many to sum in memory: each
// dimension grouped from the rows, against the table both ways (temporary B-trees on disk).
std::string rollups_by_sql(sqlite3* db) {
    std::string rows;
    for (const char* dim : kRollupDims) rows += (rows.empty() ? "" : " UNION ALL ") + rollup_select(dim, "");
    for (const auto& [sql, what] : std::vector<std::pair<std::string, std::string>>{
             {"SELECT * FROM rollup EXCEPT SELECT * FROM (" + rows + ") LIMIT 1", "does not match the records"},
             {"SELECT * FROM (" + rows + ") EXCEPT SELECT * FROM rollup LIMIT 1", "is missing for records that exist"}}) {
        Stmt st(db, sql);
        if (st.step())
            return "the " + st.text(0) + " roll-up for \"" + st.text(2) + "\" in hour " + st.text(1) + " " + what;
    }
    return "";
}

}  // namespace

std::string Store::verify_rollups(size_t max_in_memory) const { return walk(false, max_in_memory).rollups; }

Store::VerifyResult Store::verify() const { return walk(true, kRollupsInMemory); }

Store::VerifyResult Store::walk(bool chain, size_t max_derived) const {
    VerifyResult res;
    Stmt st(db_, "SELECT id, " + columns_list() + ", prev_hash, hash FROM records ORDER BY id");
    constexpr int ncols = static_cast<int>(kColumnCount);
    static const size_t ts = column_index("ts_ms"), kind = column_index("kind"), action = column_index("action"),
                        in = column_index("bytes_from_client"), out = column_index("bytes_to_client");
    static const std::array<size_t, std::size(kRollupDims)> dims = [] {
        std::array<size_t, std::size(kRollupDims)> d{};
        for (size_t i = 0; i < d.size(); ++i) d[i] = column_index(kRollupDims[i]);
        return d;
    }();
    // Each row is read in place (views into SQLite's row, valid until the next step) and hashed
    // into one reused buffer; the roll-ups are summed from the same rows rather than by ten
    // GROUP BY queries (a day of a busy gateway is a million rows: 9 s before, most of it those).
    std::array<std::string_view, kColumnCount> vals;
    std::string expected_prev = kGenesisHash, computed, key;
    std::unordered_map<std::string, Sums> derived;
    bool too_many = false;  // the roll-ups are checked by SQL after the walk
    bool first = true;
    while (st.step()) {
        ++res.rows;
        const int64_t id = st.integer(0);
        for (int i = 0; i < ncols; ++i) vals[static_cast<size_t>(i)] = st.text_view(1 + i);
        const std::string_view prev = st.text_view(1 + ncols), hash = st.text_view(2 + ncols);
        const bool checkpoint = vals[kind] == "checkpoint";
        if (chain) {
            if (checkpoint) {
                // Left by prune: the chain continues from the hash of the last pruned row.
                if (!first) return {false, res.rows, id, "checkpoint row in the middle of the chain", ""};
                expected_prev.assign(hash);
                first = false;
                continue;
            }
            first = false;
            if (prev != expected_prev)
                return {false, res.rows, id, "does not follow the previous row (a row was deleted or inserted before it)", ""};
            chain_hash(prev, vals, computed);
            if (computed != hash) return {false, res.rows, id, "content does not match its hash (edited)", ""};
            expected_prev.assign(hash);
        }
        if (!has_rollup_ || too_many || checkpoint || vals[kind] == "system") continue;
        const std::string hour = std::to_string(st.integer(1 + static_cast<int>(ts)) / 3'600'000);
        const int64_t from = st.integer(1 + static_cast<int>(in)), to = st.integer(1 + static_cast<int>(out));
        const bool blocked = vals[action] == "block";
        for (size_t d = 0; d < dims.size(); ++d) {
            key.assign(kRollupDims[d]).append("\n").append(hour).append("\n").append(vals[dims[d]]);
            auto it = derived.find(key);
            if (it == derived.end()) {
                if (derived.size() >= max_derived) {
                    too_many = true;
                    derived.clear();
                    break;
                }
                it = derived.emplace(key, Sums{}).first;
            }
            Sums& sums = it->second;
            ++sums.n;
            sums.bytes_in += from;
            sums.bytes_out += to;
            sums.blocked += blocked;
        }
    }
    if (has_rollup_) res.rollups = too_many ? rollups_by_sql(db_) : compare_rollups(db_, derived);
    return res;
}

}  // namespace vigil::audit

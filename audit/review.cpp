// The questions review asks of the audit log: counts by dimension (roll-ups for whole hours,
// rows for the rest), and proof that neither the rows nor the roll-ups were edited.
#include "audit/store.hpp"

#include <map>
#include <set>

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

std::string Store::verify_rollups() const {
    if (!has_rollup_) return "";
    std::string rows;
    for (const char* dim : kRollupDims) rows += (rows.empty() ? "" : " UNION ALL ") + rollup_select(dim, "");
    for (const auto& [sql, what] : std::vector<std::pair<std::string, std::string>>{
             {"SELECT * FROM rollup EXCEPT SELECT * FROM (" + rows + ") LIMIT 1", "does not match the records"},
             {"SELECT * FROM (" + rows + ") EXCEPT SELECT * FROM rollup LIMIT 1", "is missing for records that exist"}}) {
        Stmt st(db_, sql);
        if (st.step())
            return "the " + st.text(0) + " roll-up for \"" + st.text(2) + "\" in hour " + st.text(1) + " " + what;
    }
    return "";
}

Store::VerifyResult Store::verify() const {
    VerifyResult res;
    Stmt st(db_, "SELECT id, " + columns_list() + ", prev_hash, hash FROM records ORDER BY id");
    const int ncols = static_cast<int>(record_columns().size());
    std::string expected_prev = kGenesisHash;
    bool first = true;
    while (st.step()) {
        ++res.rows;
        int64_t id = st.integer(0);
        std::vector<std::string> vals;
        for (int i = 0; i < ncols; ++i) vals.push_back(st.text(1 + i));
        std::string prev = st.text(1 + ncols), hash = st.text(2 + ncols);
        if (vals[2] == "checkpoint") {
            // Left by prune: the chain continues from the hash of the last pruned row.
            if (!first) return {false, res.rows, id, "checkpoint row in the middle of the chain"};
            expected_prev = hash;
            first = false;
            continue;
        }
        first = false;
        if (prev != expected_prev)
            return {false, res.rows, id, "does not follow the previous row (a row was deleted or inserted before it)"};
        if (chain_hash(prev, vals) != hash) return {false, res.rows, id, "content does not match its hash (edited)"};
        expected_prev = hash;
    }
    return res;
}

}  // namespace vigil::audit

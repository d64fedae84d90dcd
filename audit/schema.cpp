// The audit log's schema (audit/schema.hpp).
#include "audit/schema.hpp"

#include "audit/record.hpp"

namespace vigil::audit::schema {

const char* const kRollupTable =
    "CREATE TABLE rollup(dim TEXT NOT NULL, hour INTEGER NOT NULL, key TEXT NOT NULL, n INTEGER NOT NULL,"
    " bytes_in INTEGER NOT NULL, bytes_out INTEGER NOT NULL, blocked INTEGER NOT NULL,"
    " PRIMARY KEY(dim, hour, key)) WITHOUT ROWID;";

const char* const kCounted = "kind <> 'system' AND kind <> 'checkpoint'";

std::string rollup_select(const char* dim, const std::string& where) {
    return std::string("SELECT '") + dim + "', ts_ms / 3600000, " + dim +
           ", count(*), sum(bytes_from_client), sum(bytes_to_client), sum(action = 'block') FROM records WHERE " +
           kCounted + where + " GROUP BY 2, 3";
}


std::string rebuild_rollup_sql(const std::string& where) {
    std::string sql;
    for (const char* dim : kRollupDims) sql += "INSERT INTO rollup " + rollup_select(dim, where) + ";";
    return sql;
}

std::string create_sql() {
    std::string cols;
    for (size_t i = 0; i < record_columns().size(); ++i)
        cols += ", " + record_columns()[i] + (integer_column(i) ? " INTEGER NOT NULL DEFAULT 0" : " TEXT NOT NULL DEFAULT ''");
    return "CREATE TABLE records(id INTEGER PRIMARY KEY" + cols +
           ", prev_hash TEXT NOT NULL, hash TEXT NOT NULL);"
           "CREATE INDEX records_ts ON records(ts_ms);"
           "CREATE INDEX records_host ON records(host);"
           "CREATE INDEX records_user ON records(user);"
           "CREATE INDEX records_action ON records(action);"
           "CREATE INDEX records_rule ON records(rule);"
           "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);" + std::string(kRollupTable) +
           "INSERT INTO meta VALUES ('schema', 'vigil-audit');"
           "PRAGMA user_version = " + std::to_string(kVersion) + ";";
}

[[noreturn]] void database_error(const std::string& message) { throw AuditError("audit database: " + message); }

std::string columns_list() {
    std::string out;
    for (const auto& c : record_columns()) out += (out.empty() ? "" : ", ") + c;
    return out;
}

}  // namespace vigil::audit::schema

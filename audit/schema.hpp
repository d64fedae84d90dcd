// The audit log's schema and the statements both the writer (store.cpp) and review
// (review.cpp) use. Internal to audit/.
#pragma once

#include <string>
#include <string_view>

#include <sqlite3.h>

#include "audit/store.hpp"
#include "core/sqlite.hpp"

namespace vigil::audit::schema {

// 1: records and meta. 2: + hourly roll-ups (built from the rows when a version 1 log is
// opened for writing). 3: + the cache column. 4: + the transaction ID.
inline constexpr int kVersion = 4;

// Counts per hour for stats --by: one row per (dimension, hour, key). Derived from the
// records in the same transaction that writes them; `verify` recomputes and compares them.
extern const char* const kRollupTable;
// The records that stats counts (not system events or prune checkpoints).
extern const char* const kCounted;
inline constexpr const char* kRollupDims[] = {"host", "category", "user", "rule", "action"};

// The roll-up rows, as the records give them, for one dimension (rollup's column order).
std::string rollup_select(const char* dim, const std::string& where);
// Recomputes the roll-up rows of the records matching `where` (" AND ...", or "").
std::string rebuild_rollup_sql(const std::string& where);
// A new log: tables, indexes, meta, user_version.
std::string create_sql();
// "ts_ms, kind, ...": the record columns in order.
std::string columns_list();

[[noreturn]] void database_error(const std::string& message);

// A statement whose errors are AuditErrors.
struct Stmt : core::sql::Statement {
    Stmt(sqlite3* db, std::string_view sql) : Statement(db, sql, database_error) {}
};

}  // namespace vigil::audit::schema

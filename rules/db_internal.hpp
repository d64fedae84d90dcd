// What the rule database's sources share (db.cpp, users_db.cpp, versions.cpp): statements
// whose errors are RulesErrors, write transactions, the time stamps of history rows.
#pragma once

#include <ctime>
#include <string>
#include <string_view>

#include <sqlite3.h>

#include "core/sqlite.hpp"
#include "rules/model.hpp"

namespace vigil::rules::db_internal {

[[noreturn]] inline void database_error(const std::string& message) { throw RulesError("database error: " + message); }

// A statement whose errors are RulesErrors.
struct Stmt : core::sql::Statement {
    Stmt(sqlite3* db, std::string_view sql) : Statement(db, sql, database_error) {}
};

inline std::string now_iso() {
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

// Runs `fn` in one IMMEDIATE transaction; any exception rolls everything back.
template <class Fn>
void transaction(sqlite3* db, Fn&& fn) {
    core::sql::transaction(db, "BEGIN IMMEDIATE", database_error, std::forward<Fn>(fn));
}

}  // namespace vigil::rules::db_internal

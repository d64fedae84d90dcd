// The one SQLite helper the rule database, the audit log and its review use: a prepared
// statement that finalises itself, binds and reads typed values and reports every error, and a
// transaction that rolls back on any exception. Each user says how its errors are thrown.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <sqlite3.h>

namespace vigil::core::sql {

// Throws the caller's own error type (RulesError, AuditError, ...) with SQLite's message.
using FailFn = void (*)(const std::string& message);

class Statement {
public:
    Statement(sqlite3* db, std::string_view sql, FailFn fail);
    ~Statement() { sqlite3_finalize(st_); }
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;

    // Copied by SQLite (the value may go away before the step).
    Statement& bind(int i, std::string_view v);
    Statement& bind(int i, int64_t v);
    Statement& bind_blob(int i, std::string_view v);  // bytes, not text (copied)
    // Not copied: `v` must live until the statement is reset (hot paths).
    Statement& bind_static(int i, std::string_view v);

    bool step();  // true: a row is there to read; false: done. Errors go to `fail`.
    void run();   // one step, then ready to bind and run again
    void reset();

    std::string text(int col) const;
    // The same without a copy: valid until the next step or reset.
    std::string_view text_view(int col) const;
    std::string blob(int col) const;  // every byte, NULs included
    int64_t integer(int col) const { return sqlite3_column_int64(st_, col); }
    bool is_null(int col) const { return sqlite3_column_type(st_, col) == SQLITE_NULL; }
    sqlite3_stmt* get() const { return st_; }

private:
    sqlite3_stmt* st_ = nullptr;
    FailFn fail_;
};

// Runs one statement list (no rows expected).
void exec(sqlite3* db, const std::string& sql, FailFn fail);

// Runs `fn` inside `begin` (BEGIN or BEGIN IMMEDIATE) ... COMMIT; any exception rolls it all back.
template <class Fn>
void transaction(sqlite3* db, const char* begin, FailFn fail, Fn&& fn) {
    exec(db, begin, fail);
    try {
        fn();
        exec(db, "COMMIT", fail);
    } catch (...) {
        sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
    }
}

}  // namespace vigil::core::sql

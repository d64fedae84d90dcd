// The SQLite helper (core/sqlite.hpp).
#include "core/sqlite.hpp"

#include <stdexcept>

namespace vigil::core::sql {
namespace {

[[noreturn]] void raise(FailFn fail, const std::string& message) {
    fail(message);
    throw std::runtime_error(message);  // a FailFn that returned: still an error
}

}  // namespace

Statement::Statement(sqlite3* db, std::string_view sql, FailFn fail) : fail_(fail) {
    if (sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &st_, nullptr) != SQLITE_OK)
        raise(fail_, sqlite3_errmsg(db));
}

Statement& Statement::bind(int i, std::string_view v) {
    sqlite3_bind_text(st_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
}

Statement& Statement::bind(int i, int64_t v) {
    sqlite3_bind_int64(st_, i, v);
    return *this;
}

Statement& Statement::bind_blob(int i, std::string_view v) {
    sqlite3_bind_blob(st_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
}

Statement& Statement::bind_static(int i, std::string_view v) {
    sqlite3_bind_text(st_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    return *this;
}

bool Statement::step() {
    const int rc = sqlite3_step(st_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    raise(fail_, sqlite3_errmsg(sqlite3_db_handle(st_)));
}

void Statement::run() {
    step();
    reset();
}

void Statement::reset() {
    sqlite3_reset(st_);
    sqlite3_clear_bindings(st_);
}

std::string Statement::blob(int col) const {
    const void* p = sqlite3_column_blob(st_, col);
    return p ? std::string(static_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(st_, col))) : "";
}

std::string Statement::text(int col) const {
    auto* p = sqlite3_column_text(st_, col);
    return p ? reinterpret_cast<const char*>(p) : "";
}

std::string_view Statement::text_view(int col) const {
    auto* p = sqlite3_column_text(st_, col);
    return p ? std::string_view(reinterpret_cast<const char*>(p)) : std::string_view();
}

void exec(sqlite3* db, const std::string& sql, FailFn fail) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
        std::string msg = err ? err : sqlite3_errmsg(db);
        sqlite3_free(err);
        raise(fail, msg);
    }
}

}  // namespace vigil::core::sql

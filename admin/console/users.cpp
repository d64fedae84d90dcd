// console.db: two tables, written one statement at a time (SQLite serialises the writers).
#include "admin/console/users.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>


#include "audit/record.hpp"
#include "core/sqlite.hpp"
#include "rules/password.hpp"

namespace vigil::console {
namespace {

[[noreturn]] void fail(const std::string& message) { throw ConsoleError("console.db: " + message); }

struct Stmt : core::sql::Statement {
    Stmt(sqlite3* db, std::string_view sql) : Statement(db, sql, fail) {}
};


}  // namespace

const char* role_name(Role r) { return r == Role::admin ? "admin" : r == Role::analyst ? "analyst" : "viewer"; }

std::optional<Role> parse_role(const std::string& name) {
    if (name == "viewer") return Role::viewer;
    if (name == "analyst") return Role::analyst;
    if (name == "admin") return Role::admin;
    return std::nullopt;
}

std::unique_ptr<ConsoleDb> ConsoleDb::open(const std::string& path) {
    // The file holds password hashes: created readable by its owner only.
    if (::access(path.c_str(), F_OK) != 0) {
        int fd = ::open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
        if (fd >= 0) ::close(fd);
    }
    sqlite3* raw = nullptr;
    if (sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK) {
        std::string msg = raw ? sqlite3_errmsg(raw) : "cannot open";
        sqlite3_close(raw);
        throw ConsoleError(path + ": " + msg);
    }
    std::unique_ptr<ConsoleDb> db(new ConsoleDb(raw));
    sqlite3_busy_timeout(raw, 5000);
    core::sql::exec(raw,
                    "CREATE TABLE IF NOT EXISTS users(name TEXT PRIMARY KEY, hash TEXT NOT NULL, role TEXT NOT NULL);"
                    "CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY, ts TEXT NOT NULL, user TEXT NOT NULL,"
                    " client TEXT NOT NULL, event TEXT NOT NULL, detail TEXT NOT NULL);",
                    fail);
    return db;
}

ConsoleDb::~ConsoleDb() { sqlite3_close(db_); }

void ConsoleDb::add_user(const std::string& name, const std::string& password, Role role) {
    if (name.empty() || name.size() > 64) throw ConsoleError("a user name is 1 to 64 characters");
    for (char c : name)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '@' || c == '-'))
            throw ConsoleError("user name \"" + name + "\": letters, digits and . _ @ - only");
    if (password.size() < 10) throw ConsoleError("the password needs 10 characters at least");
    Stmt have(db_, "SELECT 1 FROM users WHERE name = ?");
    have.bind(1, name);
    if (have.step()) throw ConsoleError("user " + name + " exists (remove it first)");
    Stmt(db_, "INSERT INTO users(name, hash, role) VALUES (?, ?, ?)")
        .bind(1, name)
        .bind(2, rules::hash_password(password))
        .bind(3, role_name(role))
        .run();
}

bool ConsoleDb::remove_user(const std::string& name) {
    Stmt(db_, "DELETE FROM users WHERE name = ?").bind(1, name).run();
    return sqlite3_changes(db_) > 0;
}

std::vector<ConsoleUser> ConsoleDb::users() const {
    std::vector<ConsoleUser> out;
    for (Stmt st(db_, "SELECT name, role FROM users ORDER BY name"); st.step();)
        out.push_back({st.text(0), parse_role(st.text(1)).value_or(Role::viewer)});
    return out;
}

std::optional<Role> ConsoleDb::check(const std::string& name, const std::string& password) const {
    static const std::string dummy = rules::hash_password("not a real password at all");
    Stmt st(db_, "SELECT hash, role FROM users WHERE name = ?");
    st.bind(1, name);
    if (!st.step()) {
        rules::verify_password(password, dummy);  // as slow as a known name
        return std::nullopt;
    }
    if (!rules::verify_password(password, st.text(0))) return std::nullopt;
    return parse_role(st.text(1));
}

void ConsoleDb::event(const std::string& user, const std::string& client, const std::string& what,
                      const std::string& detail) {
    Stmt(db_, "INSERT INTO events(ts, user, client, event, detail) VALUES (?, ?, ?, ?, ?)")
        .bind(1, audit::iso_time(audit::epoch_ms()))
        .bind(2, user.substr(0, 128))
        .bind(3, client)
        .bind(4, what)
        .bind(5, detail.substr(0, 1000))
        .run();
}

std::vector<ConsoleEvent> ConsoleDb::events(int limit) const {
    std::vector<ConsoleEvent> out;
    Stmt st(db_, "SELECT ts, user, client, event, detail FROM events ORDER BY id DESC LIMIT ?");
    st.bind(1, int64_t(limit));
    while (st.step()) out.push_back({st.text(0), st.text(1), st.text(2), st.text(3), st.text(4)});
    return out;
}

}  // namespace vigil::console

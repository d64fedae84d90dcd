// Kept versions of the rules: a snapshot per write, for diff and rollback (rules/db.hpp).
#include "rules/db.hpp"

#include "rules/db_internal.hpp"

namespace vigil::rules {
namespace {

using namespace db_internal;

bool has_snapshots(sqlite3* db) {
    Stmt st(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'snapshots'");
    return st.step() && st.integer(0) > 0;
}

}  // namespace

void RuleDb::keep_version() {
    RuleData d = read_all();
    d.users.clear();  // users and their password hashes are not part of a ruleset version
    d.groups.clear();
    Stmt(db_, "INSERT OR REPLACE INTO snapshots(version, ts, data) VALUES (?, datetime('now'), ?)")
        .bind(1, d.version)
        .bind(2, to_json(d))
        .run();
    Stmt(db_, "DELETE FROM snapshots WHERE version <= ?").bind(1, d.version - kKeptVersions).run();
    if (check_) check_(d);  // throws to undo the write
}

std::optional<std::string> RuleDb::compiled(const std::string& key) const {
    Stmt exists(db_, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'compiled'");
    if (!exists.step() || exists.integer(0) == 0) return std::nullopt;
    Stmt st(db_, "SELECT data FROM compiled WHERE key = ?");
    st.bind(1, key);
    if (!st.step()) return std::nullopt;
    return st.blob(0);
}

void RuleDb::put_compiled(const std::string& key, const std::string& data) {
    Stmt(db_, "INSERT OR REPLACE INTO compiled(key, data) VALUES (?, ?)").bind(1, key).bind_blob(2, data).run();
    Stmt(db_, "DELETE FROM compiled WHERE id NOT IN (SELECT id FROM compiled ORDER BY id DESC LIMIT ?)")
        .bind(1, int64_t(kKeptCompiled))
        .run();
}

std::optional<RuleData> RuleDb::at_version(int64_t version) const {
    if (!has_snapshots(db_)) return std::nullopt;
    Stmt st(db_, "SELECT data FROM snapshots WHERE version = ?");
    st.bind(1, version);
    if (!st.step()) return std::nullopt;
    RuleData d = from_json(st.text(0));
    d.version = version;
    return d;
}

Counts RuleDb::replace_all(const RuleData& data, const std::string& actor, const std::string& operation) {
    return write_rules(data, actor, operation, true);
}

}  // namespace vigil::rules

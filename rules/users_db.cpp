// Proxy users and groups in the rule database (rules/db.hpp). A password hash is written only
// by add and passwd; history rows never carry it.
#include <set>

#include "rules/db.hpp"
#include "rules/db_internal.hpp"

namespace vigil::rules {

using namespace db_internal;

void RuleDb::put_user(const User& u, bool replace_hash, const std::string& actor) {
    transaction(db_, [&] {
        for (const auto& g : u.groups) {
            Stmt q(db_, "SELECT 1 FROM groups WHERE name = ?");
            q.bind(1, g);
            if (!q.step()) throw RulesError("user \"" + u.name + "\": unknown group \"" + g + "\" (vigil-rules group add " + g + ")");
        }
        Stmt exists(db_, "SELECT 1 FROM users WHERE name = ?");
        exists.bind(1, u.name);
        bool existed = exists.step();
        if (!existed && u.password_hash.empty()) throw RulesError("no user \"" + u.name + "\"");
        if (!existed || replace_hash) {
            Stmt up(db_, "INSERT INTO users(name, password_hash, enabled) VALUES (?, ?, ?) ON CONFLICT(name) DO "
                         "UPDATE SET password_hash = excluded.password_hash, enabled = excluded.enabled");
            up.bind(1, u.name).bind(2, u.password_hash).bind(3, int64_t(u.enabled)).run();
        }
        Stmt del(db_, "DELETE FROM members WHERE user = ?");
        del.bind(1, u.name).run();
        Stmt add(db_, "INSERT INTO members(user, grp) VALUES (?, ?)");
        std::string groups;
        for (const auto& g : u.groups) {
            add.bind(1, u.name).bind(2, g).run();
            groups += (groups.empty() ? "" : ",") + g;
        }
        record(actor, existed ? (replace_hash ? "passwd" : "groups") : "add user", "user:" + u.name, "",
               "groups=" + groups);  // never the hash
        bump_version("");
    });
}

void RuleDb::remove_user(const std::string& name, const std::string& actor) {
    transaction(db_, [&] {
        Stmt del(db_, "DELETE FROM users WHERE name = ?");
        del.bind(1, name).run();
        if (sqlite3_changes(db_) == 0) throw RulesError("no user \"" + name + "\"");
        record(actor, "remove", "user:" + name, name, "");
        bump_version("");
    });
}

void RuleDb::put_group(const std::string& name, bool remove, const std::string& actor) {
    transaction(db_, [&] {
        if (remove) {
            Stmt used(db_, "SELECT name FROM policies WHERE match_group = ?");
            used.bind(1, name);
            if (used.step())
                throw RulesError("group \"" + name + "\" is used by policy \"" + used.text(0) + "\"; remove it first");
            Stmt del(db_, "DELETE FROM groups WHERE name = ?");
            del.bind(1, name).run();
            if (sqlite3_changes(db_) == 0) throw RulesError("no group \"" + name + "\"");
        } else {
            if (name.empty()) throw RulesError("group without a name");
            Stmt add(db_, "INSERT OR IGNORE INTO groups(name) VALUES (?)");
            add.bind(1, name).run();
        }
        record(actor, remove ? "remove" : "add group", "group:" + name, "", "");
        bump_version("");
    });
}

}  // namespace vigil::rules

// Rule database on SQLite: prepared statements, one transaction per change, schema version 1.
#include "rules/db.hpp"

#include "core/sqlite.hpp"
#include "rules/db_internal.hpp"

#include <chrono>
#include <ctime>
#include <set>

#include <nlohmann/json.hpp>
#include <sqlite3.h>

namespace vigil::rules {
namespace {

using namespace db_internal;

constexpr int kSchemaVersion = 2;

// Migrations from version N-1 to N, applied in order in one transaction each.
constexpr const char* kMigrationV2 = R"sql(
CREATE TABLE users(
  name TEXT PRIMARY KEY, password_hash TEXT NOT NULL, enabled INTEGER NOT NULL DEFAULT 1) WITHOUT ROWID;
CREATE TABLE groups(name TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE members(
  user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
  grp TEXT NOT NULL REFERENCES groups(name) ON DELETE CASCADE,
  PRIMARY KEY(user, grp)) WITHOUT ROWID;
)sql";

constexpr const char* kSchema = R"sql(
CREATE TABLE categories(
  id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, description TEXT NOT NULL DEFAULT '');
CREATE TABLE hosts(
  pattern TEXT PRIMARY KEY,
  category_id INTEGER NOT NULL REFERENCES categories(id) ON DELETE CASCADE) WITHOUT ROWID;
CREATE INDEX hosts_category ON hosts(category_id);
CREATE TABLE url_patterns(
  id INTEGER PRIMARY KEY, pattern TEXT NOT NULL UNIQUE,
  category_id INTEGER NOT NULL REFERENCES categories(id) ON DELETE CASCADE,
  description TEXT NOT NULL DEFAULT '', enabled INTEGER NOT NULL DEFAULT 1);
CREATE TABLE signatures(
  id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
  target TEXT NOT NULL CHECK(target IN ('url','request_header','response_header','request_body','response_body')),
  pattern TEXT NOT NULL,
  action TEXT NOT NULL CHECK(action IN ('block','warn','monitor')),
  severity TEXT NOT NULL CHECK(severity IN ('low','medium','high','critical')),
  validator TEXT NOT NULL DEFAULT '' CHECK(validator IN ('','luhn','ssn')),
  enabled INTEGER NOT NULL DEFAULT 1, description TEXT NOT NULL DEFAULT '');
CREATE TABLE policies(
  id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, priority INTEGER NOT NULL,
  match_user TEXT NOT NULL DEFAULT '', match_group TEXT NOT NULL DEFAULT '',
  match_client_cidr TEXT NOT NULL DEFAULT '', match_category TEXT NOT NULL DEFAULT '',
  action TEXT NOT NULL CHECK(action IN ('allow','block','warn','monitor','bypass_inspection')),
  enabled INTEGER NOT NULL DEFAULT 1);
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE changes(
  id INTEGER PRIMARY KEY, ts TEXT NOT NULL, actor TEXT NOT NULL, operation TEXT NOT NULL,
  object TEXT NOT NULL, before TEXT, after TEXT);
INSERT INTO meta(key, value) VALUES ('version', '0'), ('schema', 'vigil-rules');
)sql";

}  // namespace

std::optional<Kind> parse_kind(const std::string& n) {
    if (n == "category" || n == "categories") return Kind::category;
    if (n == "host" || n == "hosts") return Kind::host;
    if (n == "url" || n == "urls" || n == "url_pattern") return Kind::url;
    if (n == "signature" || n == "signatures") return Kind::signature;
    if (n == "policy" || n == "policies") return Kind::policy;
    return std::nullopt;
}

const char* kind_name(Kind k) {
    switch (k) {
        case Kind::category: return "category";
        case Kind::host: return "host";
        case Kind::url: return "url";
        case Kind::signature: return "signature";
        case Kind::policy: return "policy";
    }
    return "?";
}

std::unique_ptr<RuleDb> RuleDb::open(const std::string& path, Mode mode) {
    sqlite3* raw = nullptr;
    int flags = mode == Mode::read_only ? SQLITE_OPEN_READONLY
                : mode == Mode::create  ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                                        : SQLITE_OPEN_READWRITE;
    if (sqlite3_open_v2(path.c_str(), &raw, flags, nullptr) != SQLITE_OK) {
        std::string msg = raw ? sqlite3_errmsg(raw) : "out of memory";
        sqlite3_close(raw);
        throw RulesError(path + ": cannot open rule database: " + msg);
    }
    std::unique_ptr<RuleDb> db(new RuleDb(raw));
    sqlite3_busy_timeout(raw, 5000);
    db->exec("PRAGMA foreign_keys = ON");
    int version = 0;
    try {
        Stmt st(raw, "PRAGMA user_version");
        if (st.step()) version = static_cast<int>(st.integer(0));
    } catch (const RulesError&) {
        throw RulesError(path + ": not a SQLite database");
    }
    if (version == 0) {
        {
            Stmt tables(raw, "SELECT count(*) FROM sqlite_master");
            tables.step();
            if (tables.integer(0) != 0) throw RulesError(path + ": not a Vigil rule database");
        }
        if (mode != Mode::create) throw RulesError(path + ": empty rule database; run vigil-rules init");
        transaction(raw, [&] {
            db->exec(kSchema);
            db->exec("PRAGMA user_version = 1");
        });
        db->exec("PRAGMA journal_mode = WAL");
        version = 1;
    } else if (version > kSchemaVersion) {
        throw RulesError(path + ": rule database schema " + std::to_string(version) +
                         " is newer than this program understands (" + std::to_string(kSchemaVersion) + ")");
    }
    {
        Stmt st(raw, "SELECT value FROM meta WHERE key = 'schema'");
        if (!st.step() || st.text(0) != "vigil-rules") throw RulesError(path + ": not a Vigil rule database");
    }
    if (version < 2 && mode != Mode::read_only) {
        transaction(raw, [&] {
            db->exec(kMigrationV2);
            db->exec("PRAGMA user_version = 2");
        });
        version = 2;
    }
    if (mode != Mode::read_only) {
        db->exec("CREATE TABLE IF NOT EXISTS snapshots(version INTEGER PRIMARY KEY, ts TEXT NOT NULL, data TEXT NOT NULL)");
        db->exec("CREATE TABLE IF NOT EXISTS compiled(id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, data BLOB NOT NULL)");
    }
    db->schema_ = version;  // a read-only open of an older file reads what it has
    return db;
}

RuleDb::~RuleDb() { sqlite3_close(db_); }

void RuleDb::exec(const char* sql) const {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
        std::string msg = err ? err : "unknown error";
        sqlite3_free(err);
        throw RulesError("database error: " + msg);
    }
}

int64_t RuleDb::version() const {
    Stmt st(db_, "SELECT value FROM meta WHERE key = 'version'");
    return st.step() ? std::stoll(st.text(0)) : 0;
}

RuleData RuleDb::load() const {
    // One read transaction, so the snapshot is consistent even while a writer commits.
    exec("BEGIN");
    RuleData d;
    try {
        d = read_all();
        exec("COMMIT");
    } catch (...) {
        exec("ROLLBACK");
        throw;
    }
    return d;
}

RuleData RuleDb::read_all() const {
    RuleData d;
    {
        for (Stmt st(db_, "SELECT name, description FROM categories ORDER BY name"); st.step();)
            d.categories.push_back({st.text(0), st.text(1)});
        for (Stmt st(db_, "SELECT h.pattern, c.name FROM hosts h JOIN categories c ON c.id = h.category_id");
             st.step();)
            d.hosts.push_back({st.text(0), st.text(1)});
        for (Stmt st(db_, "SELECT u.pattern, c.name, u.description, u.enabled FROM url_patterns u "
                          "JOIN categories c ON c.id = u.category_id ORDER BY u.pattern");
             st.step();)
            d.url_patterns.push_back({st.text(0), st.text(1), st.text(2), st.integer(3) != 0});
        for (Stmt st(db_, "SELECT name, target, pattern, action, severity, validator, description, enabled "
                          "FROM signatures ORDER BY name");
             st.step();)
            d.signatures.push_back({st.text(0), st.text(1), st.text(2), st.text(3), st.text(4), st.text(5),
                                    st.text(6), st.integer(7) != 0});
        for (Stmt st(db_, "SELECT name, priority, match_user, match_group, match_client_cidr, match_category, "
                          "action, enabled FROM policies ORDER BY priority, name");
             st.step();)
            d.policies.push_back({st.text(0), static_cast<int>(st.integer(1)), st.text(2), st.text(3), st.text(4),
                                  st.text(5), st.text(6), st.integer(7) != 0});
        for (Stmt st(db_, "SELECT key, value FROM meta WHERE key <> 'schema'"); st.step();)
            d.meta[st.text(0)] = st.text(1);
        if (schema_ >= 2) {
            for (Stmt st(db_, "SELECT u.name, u.password_hash, u.enabled, coalesce(group_concat(m.grp, ','), '') "
                              "FROM users u LEFT JOIN members m ON m.user = u.name GROUP BY u.name ORDER BY u.name");
                 st.step();) {
                User u{st.text(0), st.text(1), {}, st.integer(2) != 0};
                std::string g = st.text(3);
                for (size_t a = 0; !g.empty() && a != std::string::npos;) {
                    size_t b = g.find(',', a);
                    u.groups.push_back(g.substr(a, b == std::string::npos ? std::string::npos : b - a));
                    a = b == std::string::npos ? b : b + 1;
                }
                d.users.push_back(std::move(u));
            }
            for (Stmt st(db_, "SELECT name FROM groups ORDER BY name"); st.step();) d.groups.push_back(st.text(0));
        }
    }
    d.version = d.meta.count("version") ? std::stoll(d.meta["version"]) : 0;
    return d;
}

Counts RuleDb::counts() const {
    Counts c;
    auto count = [&](const char* sql) {
        Stmt st(db_, sql);
        st.step();
        return static_cast<size_t>(st.integer(0));
    };
    c.categories = count("SELECT count(*) FROM categories");
    c.hosts = count("SELECT count(*) FROM hosts");
    c.url_patterns = count("SELECT count(*) FROM url_patterns");
    c.signatures = count("SELECT count(*) FROM signatures");
    c.policies = count("SELECT count(*) FROM policies");
    return c;
}

void RuleDb::bump_version(const std::string& source) {
    Stmt(db_, "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'version'").run();
    Stmt(db_, "INSERT OR REPLACE INTO meta(key, value) VALUES ('updated', ?)").bind(1, now_iso()).run();
    if (!source.empty())
        Stmt(db_, "INSERT OR REPLACE INTO meta(key, value) VALUES ('source', ?)").bind(1, source).run();
    keep_version();
}

void RuleDb::record(const std::string& actor, const std::string& op, const std::string& object,
                    const std::string& before, const std::string& after) {
    Stmt st(db_, "INSERT INTO changes(ts, actor, operation, object, before, after) VALUES (?, ?, ?, ?, ?, ?)");
    st.bind(1, now_iso()).bind(2, actor).bind(3, op).bind(4, object).bind(5, before).bind(6, after).run();
}

Counts RuleDb::merge(const RuleData& in, const std::string& actor, const std::string& operation) {
    return write_rules(in, actor, operation, false);
}

Counts RuleDb::write_rules(const RuleData& in, const std::string& actor, const std::string& operation, bool replace) {
    // Validate everything first: nothing is written unless all of it is good.
    std::set<std::string> known;
    if (!replace)
        for (Stmt st(db_, "SELECT name FROM categories"); st.step();) known.insert(st.text(0));
    for (const auto& c : in.categories) {
        if (c.name.empty()) throw RulesError("category without a name");
        known.insert(c.name);
    }
    auto need_category = [&](const std::string& what, const std::string& cat) {
        if (!known.count(cat)) throw RulesError(what + ": unknown category \"" + cat + "\"");
    };
    for (const auto& h : in.hosts) need_category("host \"" + h.pattern + "\"", h.category);
    for (const auto& u : in.url_patterns) {
        validate(u);
        need_category("URL pattern \"" + u.pattern + "\"", u.category);
    }
    for (const auto& s : in.signatures) validate(s);
    for (const auto& p : in.policies) {
        validate(p);
        if (!p.match_category.empty()) need_category("policy \"" + p.name + "\"", p.match_category);
    }

    Counts n;
    transaction(db_, [&] {
        if (replace) exec("DELETE FROM policies; DELETE FROM signatures; DELETE FROM url_patterns; DELETE FROM hosts; "
                          "DELETE FROM categories;");
        Stmt cat(db_, "INSERT INTO categories(name, description) VALUES (?, ?) "
                      "ON CONFLICT(name) DO UPDATE SET description = CASE WHEN excluded.description = '' "
                      "THEN description ELSE excluded.description END");
        for (const auto& c : in.categories) cat.bind(1, c.name).bind(2, c.description).run(), ++n.categories;
        Stmt host(db_, "INSERT OR REPLACE INTO hosts(pattern, category_id) "
                       "SELECT ?, id FROM categories WHERE name = ?");
        for (const auto& h : in.hosts)
            host.bind(1, normalize_host_pattern(h.pattern)).bind(2, h.category).run(), ++n.hosts;
        Stmt url(db_, "INSERT INTO url_patterns(pattern, category_id, description, enabled) "
                      "SELECT ?, id, ?, ? FROM categories WHERE name = ? "
                      "ON CONFLICT(pattern) DO UPDATE SET category_id = excluded.category_id, "
                      "description = excluded.description, enabled = excluded.enabled");
        for (const auto& u : in.url_patterns)
            url.bind(1, u.pattern).bind(2, u.description).bind(3, int64_t(u.enabled)).bind(4, u.category).run(),
                ++n.url_patterns;
        Stmt sig(db_, "INSERT INTO signatures(name, target, pattern, action, severity, validator, enabled, "
                      "description) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
                      "target = excluded.target, pattern = excluded.pattern, action = excluded.action, "
                      "severity = excluded.severity, validator = excluded.validator, enabled = excluded.enabled, "
                      "description = excluded.description");
        for (const auto& s : in.signatures)
            sig.bind(1, s.name).bind(2, s.target).bind(3, s.pattern).bind(4, s.action).bind(5, s.severity)
                .bind(6, s.validator).bind(7, int64_t(s.enabled)).bind(8, s.description).run(),
                ++n.signatures;
        Stmt pol(db_, "INSERT INTO policies(name, priority, match_user, match_group, match_client_cidr, "
                      "match_category, action, enabled) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE "
                      "SET priority = excluded.priority, match_user = excluded.match_user, "
                      "match_group = excluded.match_group, match_client_cidr = excluded.match_client_cidr, "
                      "match_category = excluded.match_category, action = excluded.action, "
                      "enabled = excluded.enabled");
        for (const auto& p : in.policies)
            pol.bind(1, p.name).bind(2, int64_t(p.priority)).bind(3, p.match_user).bind(4, p.match_group)
                .bind(5, p.match_client_cidr).bind(6, p.match_category).bind(7, p.action)
                .bind(8, int64_t(p.enabled)).run(),
                ++n.policies;
        // Small changes are recorded in full; imports as a summary (a 1M-host import is not copied).
        size_t total = n.categories + n.hosts + n.url_patterns + n.signatures + n.policies;
        std::string after;
        if (total <= 20) {
            RuleData copy = in;
            copy.meta.clear();
            after = to_json(copy);
        } else {
            after = nlohmann::json{{"categories", n.categories}, {"hosts", n.hosts}, {"url_patterns", n.url_patterns},
                                   {"signatures", n.signatures}, {"policies", n.policies}}
                        .dump();
        }
        record(actor, operation, total == 1 ? "single" : "batch", "", after);
        auto src = in.meta.find("source");
        bump_version(src == in.meta.end() ? "" : src->second);
        // A bundle's own version and origin (rules.source), in the same transaction as its rules.
        for (const auto& [key, value] : in.meta)
            if (key.rfind("bundle_", 0) == 0)
                Stmt(db_, "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)").bind(1, key).bind(2, value).run();
    });
    return n;
}

std::string RuleDb::meta(const std::string& key) const {
    Stmt st(db_, "SELECT value FROM meta WHERE key = ?");
    st.bind(1, key);
    return st.step() ? st.text(0) : std::string();
}

void RuleDb::remove(Kind kind, const std::string& key, const std::string& actor) {
    transaction(db_, [&] {
        std::string before;
        const char* sql = nullptr;
        std::string k = kind == Kind::host ? normalize_host_pattern(key) : key;
        switch (kind) {
            case Kind::category: {
                Stmt used(db_, "SELECT name FROM policies WHERE match_category = ?");
                used.bind(1, k);
                if (used.step())
                    throw RulesError("category \"" + k + "\" is used by policy \"" + used.text(0) + "\"; remove it first");
                sql = "DELETE FROM categories WHERE name = ?";
                break;
            }
            case Kind::host: sql = "DELETE FROM hosts WHERE pattern = ?"; break;
            case Kind::url: sql = "DELETE FROM url_patterns WHERE pattern = ?"; break;
            case Kind::signature: sql = "DELETE FROM signatures WHERE name = ?"; break;
            case Kind::policy: sql = "DELETE FROM policies WHERE name = ?"; break;
        }
        Stmt st(db_, sql);
        st.bind(1, k).run();
        if (sqlite3_changes(db_) == 0) throw RulesError(std::string("no ") + kind_name(kind) + " \"" + k + "\"");
        record(actor, "remove", std::string(kind_name(kind)) + ":" + k, k, "");
        bump_version("");
    });
}

void RuleDb::set_enabled(Kind kind, const std::string& key, bool enabled, const std::string& actor) {
    const char* sql = kind == Kind::signature ? "UPDATE signatures SET enabled = ? WHERE name = ?"
                      : kind == Kind::policy  ? "UPDATE policies SET enabled = ? WHERE name = ?"
                      : kind == Kind::url     ? "UPDATE url_patterns SET enabled = ? WHERE pattern = ?"
                                              : nullptr;
    if (!sql) throw RulesError(std::string(kind_name(kind)) + " entries cannot be enabled or disabled; remove them");
    transaction(db_, [&] {
        Stmt st(db_, sql);
        st.bind(1, int64_t(enabled)).bind(2, key).run();
        if (sqlite3_changes(db_) == 0) throw RulesError(std::string("no ") + kind_name(kind) + " \"" + key + "\"");
        record(actor, enabled ? "enable" : "disable", std::string(kind_name(kind)) + ":" + key,
               enabled ? "disabled" : "enabled", enabled ? "enabled" : "disabled");
        bump_version("");
    });
}

std::vector<Change> RuleDb::history(int limit) const {
    std::vector<Change> out;
    Stmt st(db_, "SELECT id, ts, actor, operation, object, before, after FROM changes ORDER BY id DESC LIMIT ?");
    st.bind(1, int64_t(limit));
    while (st.step())
        out.push_back({st.integer(0), st.text(1), st.text(2), st.text(3), st.text(4), st.text(5), st.text(6)});
    return out;
}

}  // namespace vigil::rules

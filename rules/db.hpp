// The SQLite rule database: schema and migrations, whole-ruleset reads, and writes that are each
// one validated transaction with a change-history row and a new ruleset version.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "rules/model.hpp"

struct sqlite3;

namespace vigil::rules {

enum class Kind { category, host, url, signature, policy };
std::optional<Kind> parse_kind(const std::string& name);
const char* kind_name(Kind k);

struct Change {
    int64_t id = 0;
    std::string ts, actor, operation, object, before, after;
};

struct Counts {
    size_t categories = 0, hosts = 0, url_patterns = 0, signatures = 0, policies = 0;
};

class RuleDb {
public:
    enum class Mode { read_only, read_write, create };
    // Opens a database; `create` makes and migrates a new file. A file that is not a Vigil
    // rule database, or one of a newer schema, is refused.
    static std::unique_ptr<RuleDb> open(const std::string& path, Mode mode);
    ~RuleDb();
    RuleDb(const RuleDb&) = delete;
    RuleDb& operator=(const RuleDb&) = delete;

    RuleData load() const;
    int64_t version() const;
    std::string meta(const std::string& key) const;  // "" when absent (bundle_version, updated, ...)
    Counts counts() const;

    // Adds or replaces everything in `data` (categories first). Every pattern is compiled and
    // every reference checked before anything is written; on any error nothing changes.
    Counts merge(const RuleData& data, const std::string& actor, const std::string& operation);
    // Removes one rule by its key (category/signature/policy name, host or URL pattern).
    void remove(Kind kind, const std::string& key, const std::string& actor);
    void set_enabled(Kind kind, const std::string& key, bool enabled, const std::string& actor);

    // Proxy users and groups. A user's password hash is written only by add/passwd; history
    // rows never carry it.
    void put_user(const User& user, bool replace_hash, const std::string& actor);
    void remove_user(const std::string& name, const std::string& actor);
    void put_group(const std::string& name, bool remove, const std::string& actor);

    std::vector<Change> history(int limit) const;

    // Every write keeps the rules of the version it makes (not the users), the newest
    // kKeptVersions of them, for `diff` and `rollback` (rules/versions.cpp).
    static constexpr int64_t kKeptVersions = 50;
    std::optional<RuleData> at_version(int64_t version) const;  // nullopt: not kept
    // Replaces every rule with `data` (a rollback): validated first, one transaction, one new version.
    Counts replace_all(const RuleData& data, const std::string& actor, const std::string& operation);

    // Called inside every write, after the change and before the commit, with the rules as they
    // will be: an exception from it undoes the write (vigil-rules' scan-cost admission).
    void set_write_check(std::function<void(const RuleData& after)> check) { check_ = std::move(check); }

    // Compiled signature databases by key (inspect/signature_matcher.hpp): the newest
    // kKeptCompiled are kept. A database opened read-only, or older than the table, has none.
    static constexpr int kKeptCompiled = 16;
    std::optional<std::string> compiled(const std::string& key) const;
    void put_compiled(const std::string& key, const std::string& data);

private:
    RuleData read_all() const;  // inside the caller's transaction
    void keep_version();        // the snapshot of the version just made, inside its transaction
    Counts write_rules(const RuleData& in, const std::string& actor, const std::string& operation, bool replace);
    explicit RuleDb(sqlite3* db) : db_(db) {}
    void exec(const char* sql) const;
    void bump_version(const std::string& source);
    void record(const std::string& actor, const std::string& op, const std::string& object,
                const std::string& before, const std::string& after);
    sqlite3* db_;
    int schema_ = 0;
    std::function<void(const RuleData&)> check_;
};

}  // namespace vigil::rules

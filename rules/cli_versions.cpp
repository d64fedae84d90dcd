// vigil-rules history, diff and rollback, and the change report after every write.
#include <iomanip>
#include <iostream>

#include <nlohmann/json.hpp>

#include "rules/cli_args.hpp"
#include "rules/diff.hpp"

namespace vigil::rules::cli {
namespace {

int64_t version_arg(const std::string& text) {
    try {
        size_t used = 0;
        const long long v = std::stoll(text, &used);
        if (used == text.size() && v >= 0) return v;
    } catch (const std::exception&) {
    }
    usage_error("\"" + text + "\" is not a ruleset version");
}

RuleData kept_version(const RuleDb& db, int64_t v) {
    auto d = db.at_version(v);
    if (!d)
        throw RulesError("version " + std::to_string(v) + " is not kept (the newest " +
                         std::to_string(RuleDb::kKeptVersions) + " versions written by this Vigil are)");
    return *d;
}

void print_changes(const std::vector<RuleChange>& changes, size_t limit) {
    size_t added = 0, removed = 0, changed = 0;
    for (const auto& c : changes) (c.op == '+' ? added : c.op == '-' ? removed : changed)++;
    std::cout << added << " added, " << removed << " removed, " << changed << " changed\n";
    for (size_t i = 0; i < changes.size() && i < limit; ++i) std::cout << "  " << describe(changes[i]) << "\n";
    if (changes.size() > limit) std::cout << "  (and " << changes.size() - limit << " more)\n";
}

}  // namespace

// After a write: what it changed, rule by rule (the first 20), and the new version.
void print_write(const RuleDb& db, int64_t before) {
    const int64_t after = db.version();
    if (after == before) return;
    auto from = db.at_version(before), to = db.at_version(after);
    if (!from || !to) return;  // the first write of a database made before versions were kept
    std::cout << "ruleset version " << before << " -> " << after << ": ";
    print_changes(diff(*from, *to), 20);
}

int cmd_diff(const RuleDb& db, const Args& a) {
    if (a.positional.size() < 2 || a.positional.size() > 3) usage_error("diff VERSION [VERSION]");
    const int64_t from = version_arg(a.positional[1]);
    const int64_t to = a.positional.size() == 3 ? version_arg(a.positional[2]) : db.version();
    const auto changes = diff(kept_version(db, from), kept_version(db, to));
    if (a.has("--json")) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& c : changes)
            out.push_back({{"op", std::string(1, c.op)}, {"kind", c.kind}, {"key", c.key}, {"detail", c.detail}});
        std::cout << out.dump(2) << "\n";
        return 0;
    }
    std::cout << "ruleset version " << from << " -> " << to << ": ";
    print_changes(changes, changes.size());
    return 0;
}

int cmd_rollback(RuleDb& db, const Args& a) {
    if (a.positional.size() != 2) usage_error("rollback VERSION");
    const int64_t target = version_arg(a.positional[1]);
    RuleData d = kept_version(db, target);
    db.replace_all(d, actor(a), "rollback to version " + std::to_string(target));
    std::cout << "rolled back to the rules of version " << target << " as version " << db.version() << "\n";
    return 0;
}

// The history as a table: what each write did, in a line; --json for the full rows.
int cmd_history(const RuleDb& db, const Args& a) {
    int limit = 50;
    try {
        limit = std::stoi(a.get("--limit", "50"));
    } catch (const std::exception&) {
        usage_error("--limit must be a number");
    }
    const auto rows = db.history(limit);
    if (a.has("--json")) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& c : rows) {
            // `after` is the rules written (JSON) for most rows; kept as text when it is not JSON.
            auto after = nlohmann::json::parse(c.after.empty() ? "null" : c.after, nullptr, false);
            if (after.is_discarded()) after = c.after;
            out.push_back({{"id", c.id}, {"ts", c.ts}, {"actor", c.actor}, {"operation", c.operation},
                           {"object", c.object}, {"before", c.before}, {"after", after}});
        }
        std::cout << out.dump(2) << "\n";
        return 0;
    }
    // What a row's "after" holds, in words: the rules of a small write, or an import's counts.
    auto summary = [](const std::string& after) -> std::string {
        auto j = nlohmann::json::parse(after, nullptr, false);
        if (j.is_discarded() || !j.is_object()) return "";
        std::string out;
        static const std::pair<const char*, const char*> kinds[] = {{"categories", "category"}, {"hosts", "host"},
            {"url_patterns", "url"}, {"signatures", "signature"}, {"policies", "policy"}};
        for (const auto& [array, kind] : kinds) {
            if (!j.contains(array)) continue;
            const auto& v = j[array];
            if (v.is_number() && v.get<long long>() > 0)
                out += (out.empty() ? "" : ", ") + std::to_string(v.get<long long>()) + " " + array;
            if (v.is_array())
                for (const auto& o : v)
                    out += (out.empty() ? "" : ", ") + std::string(kind) + " " +
                           o.value(std::string(o.contains("name") ? "name" : "pattern"), std::string());
        }
        return out.size() > 100 ? out.substr(0, 97) + "..." : out;
    };
    std::cout << std::left << std::setw(6) << "ID" << std::setw(22) << "TIME" << std::setw(14) << "ACTOR"
              << std::setw(28) << "OPERATION" << "WHAT\n";
    for (const auto& c : rows) {
        std::string what = c.object == "single" || c.object == "batch" ? summary(c.after) : c.object;
        std::cout << std::setw(6) << ("#" + std::to_string(c.id)) << std::setw(22) << c.ts << std::setw(14)
                  << c.actor.substr(0, 13) << std::setw(28) << c.operation.substr(0, 27) << what << "\n";
    }
    return 0;
}

}  // namespace vigil::rules::cli

// vigil-rules: the security analyst's tool for the rule database.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <algorithm>
#include <map>
#include <set>
#include <sstream>
#include <strings.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "inspect/compiled_cache.hpp"
#include "inspect/ruleset.hpp"
#include "rules/db.hpp"
#include "rules/cli_args.hpp"
#include "rules/diff.hpp"
#include "rules/import.hpp"
#include "rules/password.hpp"

using namespace vigil::rules;
using namespace vigil::rules::cli;
using vigil::core::cli::flag;
namespace inspect = vigil::inspect;

namespace {

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw RulesError(path + ": cannot read");
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

Kind need_kind(const std::string& k) {
    auto kind = parse_kind(k);
    if (!kind) usage_error("unknown kind \"" + k + "\" (category, host, url, signature, policy)");
    return *kind;
}

int cmd_add(RuleDb& db, const Args& a) {
    if (a.positional.size() < 3) usage_error("add KIND NAME|PATTERN [options]");
    Kind kind = need_kind(a.positional[1]);
    const std::string& key = a.positional[2];
    RuleData d;
    switch (kind) {
        case Kind::category: d.categories.push_back({key, a.get("--description")}); break;
        case Kind::host:
            if (!a.has("--category")) usage_error("add host needs --category");
            d.hosts.push_back({normalize_host_pattern(key), a.get("--category")});
            break;
        case Kind::url:
            if (!a.has("--category")) usage_error("add url needs --category");
            d.url_patterns.push_back({key, a.get("--category"), a.get("--description"), true});
            break;
        case Kind::signature:
            if (!a.has("--target") || !a.has("--pattern")) usage_error("add signature needs --target and --pattern");
            d.signatures.push_back({key, a.get("--target"), a.get("--pattern"), a.get("--action", "block"),
                                    a.get("--severity", "medium"), a.get("--validator"), a.get("--description"),
                                    true});
            break;
        case Kind::policy: {
            if (!a.has("--action")) usage_error("add policy needs --action");
            // A policy with no condition applies to every request of every user: say so.
            if (!a.has("--user") && !a.has("--group") && !a.has("--client") && !a.has("--category") && !a.has("--all"))
                usage_error("add policy " + key + " has no condition (--user, --group, --client, --category) and would "
                            "apply to everyone; give --all if that is meant");
            int prio = 100;
            try {
                prio = std::stoi(a.get("--priority", "100"));
            } catch (const std::exception&) {
                usage_error("--priority must be a number");
            }
            d.policies.push_back({key, prio, a.get("--user"), a.get("--group"), a.get("--client"),
                                  a.get("--category"), a.get("--action"), true});
            break;
        }
    }
    db.merge(d, actor(a), std::string("add ") + kind_name(kind));
    std::cout << "added " << kind_name(kind) << " " << key << " (ruleset version " << db.version() << ")\n";
    return 0;
}

void print_list(const RuleData& d, const std::string& kind, bool as_json) {
    if (as_json) {
        RuleData f;
        if (kind.empty() || kind == "category") f.categories = d.categories;
        if (kind.empty() || kind == "host") f.hosts = d.hosts;
        if (kind.empty() || kind == "url") f.url_patterns = d.url_patterns;
        if (kind.empty() || kind == "signature") f.signatures = d.signatures;
        if (kind.empty() || kind == "policy") f.policies = d.policies;
        std::cout << to_json(f);
        return;
    }
    auto on = [](bool e) { return e ? "" : "  [disabled]"; };
    if (kind.empty() || kind == "category") {
        std::cout << "categories (" << d.categories.size() << ")\n";
        for (const auto& c : d.categories) std::cout << "  " << c.name << (c.description.empty() ? "" : "  — " + c.description) << "\n";
    }
    if (kind.empty() || kind == "host") {
        std::cout << "hosts (" << d.hosts.size() << ")\n";
        auto hosts = d.hosts;
        std::sort(hosts.begin(), hosts.end(), [](auto& x, auto& y) { return x.pattern < y.pattern; });
        for (const auto& h : hosts) std::cout << "  " << h.pattern << "  → " << h.category << "\n";
    }
    if (kind.empty() || kind == "url") {
        std::cout << "url patterns (" << d.url_patterns.size() << ")\n";
        for (const auto& u : d.url_patterns) std::cout << "  " << u.pattern << "  → " << u.category << on(u.enabled) << "\n";
    }
    if (kind.empty() || kind == "signature") {
        std::cout << "signatures (" << d.signatures.size() << ")\n";
        for (const auto& s : d.signatures)
            std::cout << "  " << s.name << "  " << s.target << " " << s.action << " " << s.severity
                      << (s.validator.empty() ? "" : " validator=" + s.validator) << on(s.enabled) << "\n";
    }
    if (kind.empty() || kind == "policy") {
        std::cout << "policies (" << d.policies.size() << ")\n";
        for (const auto& p : d.policies) {
            std::cout << "  " << p.priority << "  " << p.name << "  " << p.action << " when";
            if (!p.match_category.empty()) std::cout << " category=" << p.match_category;
            if (!p.match_user.empty()) std::cout << " user=" << p.match_user;
            if (!p.match_group.empty()) std::cout << " group=" << p.match_group;
            if (!p.match_client_cidr.empty()) std::cout << " client=" << p.match_client_cidr;
            if (p.match_category.empty() && p.match_user.empty() && p.match_group.empty() && p.match_client_cidr.empty())
                std::cout << " always";
            std::cout << on(p.enabled) << "\n";
        }
    }
}

// Views into `raw`, which must outlive the result.
inspect::Headers parse_headers(const std::vector<std::string>& raw) {
    inspect::Headers h;
    for (const std::string_view r : raw) {
        auto colon = r.find(':');
        if (colon == std::string_view::npos) usage_error("headers are given as 'Name: value'");
        std::string_view v = r.substr(colon + 1);
        while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
        h.emplace_back(r.substr(0, colon), v);
    }
    return h;
}

int cmd_test(RuleDb& db, const Args& a) {
    std::string url = a.get("--url");
    if (url.empty()) usage_error("test needs --url");
    const inspect::RuleDbCache cache(db, false);
    inspect::InspectOptions io;
    io.compiled = &cache;
    auto rs = inspect::RuleSet::compile(db.load(), io);
    inspect::Subject s;
    s.url = url;
    auto scheme_end = url.find("://");
    std::string rest = scheme_end == std::string::npos ? url : url.substr(scheme_end + 3);
    s.host = rest.substr(0, rest.find_first_of(":/?#"));
    s.user = a.get("--user");
    if (a.has("--group")) s.groups = a.all("--group");
    else
        for (const auto& u : db.load().users)
            if (u.name == s.user) s.groups = u.groups;  // the user's groups from the database
    s.client_ip = a.get("--client", "127.0.0.1");
    std::string stage = "connect";
    inspect::Verdict v = rs->check_connect(s);
    auto body_verdict = [&](inspect::Target t, const std::string& file, const inspect::Headers& hdrs) {
        std::string enc;
        for (const auto& [k, val] : hdrs)
            if (strcasecmp(std::string(k).c_str(), "content-encoding") == 0) enc = val;
        auto scanner = rs->scan_body(t, enc);
        std::string body = read_file(file);
        for (size_t off = 0; off < body.size(); off += 16384)  // in chunks, as the gateway sees it
            scanner->feed(std::string_view(body).substr(off, 16384));
        return scanner->verdict();
    };
    if (!v.bypass && v.action != inspect::Action::block) {
        const auto raw_req_headers = a.all("--request-header");
        auto req_headers = parse_headers(raw_req_headers);
        auto steps = [&]() {
            inspect::Verdict r = rs->check_request(s, req_headers);
            v.merge(r);
            stage = "request";
            if (v.action == inspect::Action::block || r.bypass) return;
            if (a.has("--request-body")) {
                v.merge(body_verdict(inspect::Target::request_body, a.get("--request-body"), req_headers));
                stage = "request body";
                if (v.action == inspect::Action::block) return;
            }
            const auto raw_resp_headers = a.all("--response-header");
            auto resp_headers = parse_headers(raw_resp_headers);
            v.merge(rs->check_response_headers(s, resp_headers));
            stage = "response";
            if (v.action == inspect::Action::block) return;
            if (a.has("--response-body")) {
                v.merge(body_verdict(inspect::Target::response_body, a.get("--response-body"), resp_headers));
                stage = "response body";
            }
        };
        steps();
    }
    std::string action = v.bypass ? "bypass_inspection" : inspect::action_name(v.action);
    if (a.has("--cost") && !a.has("--json")) print_scan_cost(db, db.load());
    if (a.has("--json")) {
        nlohmann::json j = {{"action", action}, {"rule", v.rule}, {"rule_kind", v.rule_kind},
                            {"category", v.category}, {"reason", v.reason}, {"stage", stage},
                            {"monitored", v.monitored}, {"ruleset_version", rs->version()}};
        std::cout << j.dump() << "\n";
    } else {
        std::cout << "verdict:  " << action << "\n"
                  << "rule:     " << (v.rule.empty() ? "(default allow)" : v.rule + " (" + v.rule_kind + ")") << "\n"
                  << "category: " << (v.category.empty() ? "(none)" : v.category) << "\n"
                  << "reason:   " << (v.reason.empty() ? "no rule matched" : v.reason) << "\n"
                  << "decided at: " << stage << "\n";
        if (!v.monitored.empty()) {
            std::cout << "monitored:";
            for (const auto& m : v.monitored) std::cout << " " << m;
            std::cout << "\n";
        }
    }
    return 0;
}

int dispatch(const Args& a, RuleDb* db);

int run(const Args& a) {
    std::string path = a.get("--db");
    if (path.empty()) usage_error("--db FILE is required");
    const std::string& cmd = a.positional[0];
    if (cmd == "init") {
        bool existed = std::filesystem::exists(path);
        auto db = RuleDb::open(path, RuleDb::Mode::create);
        std::cout << (existed ? "rule database already initialised: " : "created rule database ") << path << "\n";
        return 0;
    }
    bool writes = cmd == "import" || cmd == "add" || cmd == "remove" || cmd == "enable" || cmd == "disable" ||
                  cmd == "rollback" ||
                  ((cmd == "user" || cmd == "group") && !(a.positional.size() >= 2 && a.positional[1] == "list"));
    auto db = RuleDb::open(path, writes ? RuleDb::Mode::read_write : RuleDb::Mode::read_only);
    const int64_t before = db->version();
    if (writes) {
        // Every write that changes signatures is measured before it commits (cli_cost.cpp).
        CostOptions cost;
        cost.force = a.has("--force");
        if (a.has("--scan-floor")) cost.floor = std::stod(a.get("--scan-floor"));
        auto old = db->load().signatures;
        RuleDb* raw = db.get();
        db->set_write_check([raw, old = std::move(old), cost](const RuleData& after) {
            check_scan_cost(*raw, old, after, cost);
        });
    }
    const int rc = dispatch(a, db.get());
    if (writes && rc == 0) print_write(*db, before);
    return rc;
}

int dispatch(const Args& a, RuleDb* db_ptr) {
    const std::string& cmd = a.positional[0];
    auto* db = db_ptr;
    if (cmd == "import") {
        if (a.positional.size() != 2) usage_error("import FILE");
        ImportReport report;
        RuleData d = parse_import(a.positional[1], {a.get("--format"), a.get("--category"), a.has("--lenient"), &report});
        if (!d.meta.count("source")) d.meta["source"] = std::filesystem::path(a.positional[1]).filename().string();
        Counts n = db->merge(d, actor(a), "import " + a.positional[1]);
        std::cout << "imported " << n.categories << " categories, " << n.hosts << " hosts, " << n.url_patterns
                  << " URL patterns, " << n.signatures << " signatures, " << n.policies << " policies (ruleset version "
                  << db->version() << ")\n";
        if (report.used || report.skipped_total()) {
            // What happened to every line of a list: used, or skipped and why.
            std::cout << "lines: " << report.used << " used, " << report.skipped_total() << " skipped\n";
            for (const auto& [reason, count] : report.skipped) std::cout << "  " << count << " skipped: " << reason << "\n";
            for (const auto& e : report.examples) std::cout << "  e.g. " << e << "\n";
        }
        return 0;
    }
    if (cmd == "export") {
        std::string json = to_json(db->load());
        if (a.has("--out")) {
            std::ofstream(a.get("--out")) << json;
        } else {
            std::cout << json;
        }
        return 0;
    }
    if (cmd == "add") return cmd_add(*db, a);
    if (cmd == "remove" || cmd == "enable" || cmd == "disable") {
        if (a.positional.size() != 3) usage_error(cmd + " KIND KEY");
        Kind kind = need_kind(a.positional[1]);
        if (cmd == "remove") db->remove(kind, a.positional[2], actor(a));
        else db->set_enabled(kind, a.positional[2], cmd == "enable", actor(a));
        std::cout << cmd << (cmd == "remove" ? "d " : "d ") << kind_name(kind) << " " << a.positional[2]
                  << " (ruleset version " << db->version() << ")\n";
        return 0;
    }
    if (cmd == "list") {
        std::string kind = a.get("--kind");
        if (!kind.empty()) kind = kind_name(need_kind(kind));
        print_list(db->load(), kind, a.has("--json"));
        return 0;
    }
    if (cmd == "test") return cmd_test(*db, a);
    if (cmd == "user") return cmd_user(*db, a);
    if (cmd == "group") return cmd_group(*db, a);
    if (cmd == "history") return cmd_history(*db, a);
    if (cmd == "diff") return cmd_diff(*db, a);
    if (cmd == "rollback") return cmd_rollback(*db, a);
    if (cmd == "stats") {
        Counts n = db->counts();
        RuleData d = db->load();
        if (a.has("--json")) {
            nlohmann::json j = {{"version", d.version},
                                {"updated", d.meta.count("updated") ? d.meta["updated"] : ""},
                                {"source", d.meta.count("source") ? d.meta["source"] : ""},
                                {"categories", n.categories},
                                {"hosts", n.hosts},
                                {"url_patterns", n.url_patterns},
                                {"signatures", n.signatures},
                                {"policies", n.policies}};
            std::cout << j.dump() << "\n";
            return 0;
        }
        std::cout << "ruleset version: " << d.version << "\n"
                  << "updated:         " << (d.meta.count("updated") ? d.meta["updated"] : "never") << "\n"
                  << "source:          " << (d.meta.count("source") ? d.meta["source"] : "-") << "\n"
                  << "categories:      " << n.categories << "\n"
                  << "hosts:           " << n.hosts << "\n"
                  << "url patterns:    " << n.url_patterns << "\n"
                  << "signatures:      " << n.signatures << "\n"
                  << "policies:        " << n.policies << "\n";
        return 0;
    }
    usage_error("unknown command " + cmd);  // the grammar in declare() lets no other through
}

// The grammar: every command and the options it takes. An option a command does not take is an
// error (exit 2, nothing changed): a typo such as --categroy once turned a policy for one
// category into a policy for everything.
void declare(CLI::App& app) {
    app.description(
        "Keeps Vigil's rule database: categories, host entries, URL patterns, RE2 signatures, policies.\n"
        "Every change is one transaction, validated before it is written, recorded in the history, and\n"
        "printed (what changed, rule by rule, and the new ruleset version).");
    app.require_subcommand(1);
    app.add_option("--db", "the rule database (SQLite)")->required()->type_name("FILE");
    app.add_option("--actor", "recorded in the history (default $USER)")->type_name("NAME");

    app.add_subcommand("init", "create an empty database (idempotent)");

    auto* import = app.add_subcommand("import", "import rules from a file or a UT1 folder");
    import->add_option("FILE", "the file (or folder, for ut1)")->required();
    import->add_option("--format", "json (native), csv, hosts, domains, adblock, ut1 (default: from the file)")
        ->check(CLI::IsMember({"json", "csv", "hosts", "domains", "adblock", "ut1"}));
    import->add_option("--category", "the category of a hosts, domains or adblock list");
    flag(*import, "--lenient", "skip (and count) lines that cannot be used instead of refusing the file");
    auto cost_options = [](CLI::App* c) {
        flag(*c, "--force", "write signatures even when they would scan below the floor (with a warning)");
        c->add_option("--scan-floor", "MB/s on the built-in sample below which signatures are refused (default 50)")
            ->check(CLI::PositiveNumber);
    };
    cost_options(import);
    import->footer("Prints how many lines were used and skipped, by reason. Strict by default: a line that "
                   "cannot be used refuses the whole file and nothing is written.");

    app.add_subcommand("export", "the rules as native JSON")->add_option("--out", "write to FILE (default stdout)")->type_name("FILE");

    auto* add = app.add_subcommand("add", "add a rule")->require_subcommand(1);
    cost_options(add);
    auto* category = add->add_subcommand("category", "a category");
    category->add_option("NAME", "")->required();
    category->add_option("--description", "");
    auto* host = add->add_subcommand("host", "a host entry: example.com | *.example.com | .example.com");
    host->add_option("PATTERN", "")->required();
    host->add_option("--category", "")->required();
    auto* url = add->add_subcommand("url", "a URL pattern: RE2, matched against the whole URL");
    url->add_option("PATTERN", "")->required();
    url->add_option("--category", "")->required();
    url->add_option("--description", "");
    auto* sig = add->add_subcommand("signature", "an RE2 signature for a URL, a header or a body");
    sig->add_option("NAME", "")->required();
    sig->add_option("--target", "")->required()->check(
        CLI::IsMember({"url", "request_header", "response_header", "request_body", "response_body"}));
    sig->add_option("--pattern", "RE2")->required();
    sig->add_option("--action", "(default block)")->check(CLI::IsMember({"block", "warn", "monitor"}));
    sig->add_option("--severity", "(default medium)")->check(CLI::IsMember({"low", "medium", "high", "critical"}));
    sig->add_option("--validator", "a check on what matched")->check(CLI::IsMember({"luhn", "ssn"}));
    sig->add_option("--description", "");
    auto* policy = add->add_subcommand("policy", "who gets which action; lower priority is evaluated first");
    policy->add_option("NAME", "")->required();
    policy->add_option("--action", "")->required()->check(
        CLI::IsMember({"allow", "block", "warn", "monitor", "bypass_inspection"}));
    policy->add_option("--priority", "(default 100)")->check(CLI::Number);
    policy->add_option("--user", "");
    policy->add_option("--group", "");
    policy->add_option("--client", "")->type_name("CIDR");
    policy->add_option("--category", "");
    flag(*policy, "--all", "apply to everyone: needed when no condition is given");

    for (const char* verb : {"remove", "enable", "disable"}) {
        auto* c = app.add_subcommand(verb, std::string(verb) + " a rule");
        c->add_option("KIND", "category, host, url, signature, policy")->required();
        c->add_option("KEY", "its name or pattern")->required();
        if (std::string(verb) == "enable") cost_options(c);
    }
    auto* list = app.add_subcommand("list", "the rules");
    list->add_option("--kind", "only this kind");
    flag(*list, "--json", "the native JSON of what is listed");

    auto* test = app.add_subcommand("test", "the verdict for a request, with the gateway's own matching code");
    test->add_option("--url", "")->required();
    test->add_option("--method", "");
    test->add_option("--request-header", "'Name: value' (repeatable)")->take_all()->allow_extra_args(false);
    test->add_option("--request-body", "")->type_name("FILE");
    test->add_option("--response-header", "'Name: value' (repeatable)")->take_all()->allow_extra_args(false);
    test->add_option("--response-body", "")->type_name("FILE");
    test->add_option("--user", "");
    test->add_option("--group", "(repeatable; default: the user's groups in the database)")->take_all()->allow_extra_args(false);
    test->add_option("--client", "the client address (default 127.0.0.1)")->type_name("IP");
    flag(*test, "--cost", "also what each target's signatures cost on the built-in sample");
    flag(*test, "--json", "");

    auto* user = app.add_subcommand("user", "proxy users (passwords: PBKDF2-HMAC-SHA256)")->require_subcommand(1);
    auto* uadd = user->add_subcommand("add", "");
    uadd->add_option("NAME", "")->required();
    uadd->add_option("--password-file", "'-' reads standard input")->required()->type_name("FILE");
    uadd->add_option("--group", "(repeatable)")->take_all()->allow_extra_args(false);
    auto* passwd = user->add_subcommand("passwd", "");
    passwd->add_option("NAME", "")->required();
    passwd->add_option("--password-file", "'-' reads standard input")->required()->type_name("FILE");
    auto* ugroups = user->add_subcommand("groups", "replace the user's groups");
    ugroups->add_option("NAME", "")->required();
    ugroups->add_option("--group", "(repeatable)")->take_all()->allow_extra_args(false);
    user->add_subcommand("remove", "")->add_option("NAME", "")->required();
    flag(*user->add_subcommand("list", ""), "--json", "");
    auto* group = app.add_subcommand("group", "groups")->require_subcommand(1);
    group->add_subcommand("add", "")->add_option("NAME", "")->required();
    group->add_subcommand("remove", "")->add_option("NAME", "")->required();
    flag(*group->add_subcommand("list", ""), "--json", "");

    auto* history = app.add_subcommand("history", "what each write did: who, when, which rules");
    history->add_option("--limit", "(default 20)")->check(CLI::PositiveNumber);
    flag(*history, "--json", "the full rows");
    auto* diff = app.add_subcommand("diff", "the rules added, removed and changed between two versions");
    diff->add_option("FROM", "a version")->required();
    diff->add_option("TO", "a version (default: the current one)");
    flag(*diff, "--json", "");
    auto* rollback = app.add_subcommand("rollback", "a new version with the rules of VERSION (users stay); the newest 50 are kept");
    rollback->add_option("VERSION", "")->required();
    cost_options(rollback);
    flag(*app.add_subcommand("stats", "the ruleset version and how many rules of each kind"), "--json", "");
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"", "vigil-rules"};
    declare(app);
    if (int rc = vigil::core::cli::parse(app, argc, argv); rc >= 0) return rc;
    const Args a = vigil::core::cli::collect(app);
    try {
        return run(a);
    } catch (const std::exception& e) {
        std::cerr << "vigil-rules: " << e.what() << "\n";
    }
    return 1;
}

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
#include "rules/bundle.hpp"
#include "rules/import.hpp"
#include "rules/password.hpp"

using namespace vigil::rules;
using namespace vigil::rules::cli;
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
    if (cmd == "publish") {
        std::ifstream in(a.get("--key"));
        std::stringstream pem;
        pem << in.rdbuf();
        if (!in) throw RulesError(a.get("--key") + ": cannot read the signing key");
        const int64_t version = db->version();
        const std::string bundle = make_bundle(db->load(), version, pem.str());
        const std::string out = a.get("--out"), tmp = out + ".tmp";
        {
            std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
            f << bundle;
            if (!f.flush()) throw RulesError(tmp + ": cannot write the bundle");
        }
        std::filesystem::rename(tmp, out);
        std::cout << "published ruleset version " << version << " to " << out << " (" << bundle.size()
                  << " bytes)\nrules.source_key = \"" << public_key_of(pem.str()) << "\"\n";
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

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"", "vigil-rules"};
    vigil::rules::cli::declare(app);
    if (int rc = vigil::core::cli::parse(app, argc, argv); rc >= 0) return rc;
    const Args a = vigil::core::cli::collect(app);
    try {
        return run(a);
    } catch (const std::exception& e) {
        std::cerr << "vigil-rules: " << e.what() << "\n";
    }
    return 1;
}

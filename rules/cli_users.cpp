// vigil-rules user and group: proxy users (PBKDF2 password hashes) and their groups.
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "rules/cli_args.hpp"
#include "rules/password.hpp"

namespace vigil::rules::cli {
namespace {

std::string read_password(const Args& a) {
    if (!a.has("--password-file")) usage_error("give the password with --password-file F ('-' reads standard input)");
    std::string pw;
    if (a.get("--password-file") == "-") {
        std::getline(std::cin, pw);
    } else {
        std::ifstream in(a.get("--password-file"));
        if (!in) throw RulesError(a.get("--password-file") + ": cannot read");
        std::getline(in, pw);
    }
    while (!pw.empty() && (pw.back() == '\r' || pw.back() == '\n')) pw.pop_back();
    return pw;
}

}  // namespace

int cmd_user(RuleDb& db, const Args& a) {
    if (a.positional.size() < 2) usage_error("user add|passwd|groups|remove|list");
    const std::string& sub = a.positional[1];
    if (sub == "list") {
        if (a.has("--json")) {
            nlohmann::json out = nlohmann::json::array();
            for (const auto& u : db.load().users)
                out.push_back({{"name", u.name}, {"groups", u.groups}, {"enabled", u.enabled}});
            std::cout << out.dump() << "\n";
            return 0;
        }
        for (const auto& u : db.load().users) {
            std::string groups;
            for (const auto& g : u.groups) groups += (groups.empty() ? "" : ",") + g;
            std::cout << u.name << (groups.empty() ? "" : "  groups=" + groups) << (u.enabled ? "" : "  [disabled]") << "\n";
        }
        return 0;
    }
    if (a.positional.size() != 3) usage_error("user " + sub + " NAME");
    const std::string& name = a.positional[2];
    if (sub == "remove") {
        db.remove_user(name, actor(a));
    } else if (sub == "add" || sub == "passwd" || sub == "groups") {
        User u;
        u.name = name;
        if (name.empty() || name.find_first_of(": \t") != std::string::npos)
            usage_error("user names cannot be empty or contain ':' or spaces");
        if (sub != "groups") u.password_hash = hash_password(read_password(a));
        if (sub == "passwd" || sub == "groups") {
            bool found = false;
            for (const auto& existing : db.load().users)
                if (existing.name == name) {
                    found = true;
                    if (sub == "passwd") u.groups = existing.groups;
                }
            if (!found) throw RulesError("no user \"" + name + "\"");
        }
        if (sub != "passwd") u.groups = a.all("--group");
        db.put_user(u, sub != "groups", actor(a));
    } else {
        usage_error("user add|passwd|groups|remove|list");
    }
    std::cout << "user " << sub << " " << name << " (ruleset version " << db.version() << ")\n";
    return 0;
}

int cmd_group(RuleDb& db, const Args& a) {
    if (a.positional.size() >= 2 && a.positional[1] == "list") {
        if (a.has("--json")) {
            std::cout << nlohmann::json(db.load().groups).dump() << "\n";
            return 0;
        }
        for (const auto& g : db.load().groups) std::cout << g << "\n";
        return 0;
    }
    if (a.positional.size() != 3 || (a.positional[1] != "add" && a.positional[1] != "remove"))
        usage_error("group add|remove NAME");
    db.put_group(a.positional[2], a.positional[1] == "remove", actor(a));
    std::cout << "group " << a.positional[1] << " " << a.positional[2] << "\n";
    return 0;
}

}  // namespace vigil::rules::cli

// vigil-console: the administrators' web console (docs/console.md), a program of its own beside
// the gateway, reading the same configuration and files.
#include <unistd.h>

#include <iostream>

#include <CLI/CLI.hpp>

#include "admin/console/server.hpp"
#include "admin/console/users.hpp"
#include "core/cli.hpp"

namespace {

std::string users_path(const vigil::config::Config& cfg) {
    if (!cfg.console.users.empty()) return cfg.console.users;
    std::string dir = cfg.ca_dir;
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    const auto slash = dir.rfind('/');
    return (slash == std::string::npos ? std::string(".") : dir.substr(0, slash)) + "/console.db";
}

std::string read_password(const std::string& source) {
    std::string line;
    if (source == "-") {
        std::getline(std::cin, line);
    } else {
        std::ifstream in(source);
        if (!in || !std::getline(in, line)) throw vigil::console::ConsoleError(source + ": cannot read the password");
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
}

}  // namespace

int main(int argc, char** argv) {
    using namespace vigil;
    CLI::App app{"The Vigil web console: the audit, the rules and the CA in a browser (HTTPS).", "vigil-console"};
    app.add_option("--config", "the gateway's TOML configuration ([console], audit.path, rules.path, tls.ca_dir)")
        ->type_name("FILE");
    app.add_option("--set", "any configuration key, VAL in TOML syntax (repeatable)")
        ->type_name("SECTION.KEY=VAL")
        ->take_all()
        ->allow_extra_args(false);
    auto* serve = app.add_subcommand("serve", "serve the console on console.listen (the default command)");
    serve->add_option("--ready-file", "write {\"port\": N} once listening")->type_name("FILE");
    auto* user = app.add_subcommand("user", "the console's administrators")->require_subcommand(1);
    auto* add = user->add_subcommand("add", "a user with a role: viewer (read), analyst (+ rule tests), admin (+ changes)");
    add->add_option("NAME", "")->required();
    add->add_option("--role", "")->required()->check(CLI::IsMember({"viewer", "analyst", "admin"}));
    add->add_option("--password-file", "the first line of FILE, or - for standard input")->required()->type_name("SOURCE");
    user->add_subcommand("remove", "remove a user")->add_option("NAME", "")->required();
    user->add_subcommand("list", "the users and their roles");
    app.add_subcommand("events", "sign-ins, failures, refusals and changes, newest first")
        ->add_option("--limit", "(default 50)")
        ->type_name("N");
    if (int rc = core::cli::parse(app, argc, argv); rc >= 0) return rc;
    const auto args = core::cli::collect(app);
    config::Overrides overrides;
    for (const auto& kv : args.all("--set")) {
        auto eq = kv.find('=');
        if (eq == std::string::npos || eq == 0) core::cli::usage_error(app, "--set expects SECTION.KEY=VALUE");
        overrides.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
    }
    try {
        config::Config cfg = config::load_config(args.get("--config"), overrides);
        const std::string cmd = args.positional.empty() ? "serve" : args.positional[0];
        if (cmd == "serve") {
            if (cfg.audit_path.empty() || cfg.rules_path.empty())
                throw config::ConfigError("the console reads audit.path and rules.path: both are needed");
            return console::serve(cfg, users_path(cfg), args.get("--ready-file"));
        }
        auto db = console::ConsoleDb::open(users_path(cfg));
        if (cmd == "user" && args.positional[1] == "add") {
            db->add_user(args.positional[2], read_password(args.get("--password-file")),
                         *console::parse_role(args.get("--role")));
            std::cout << "added " << args.positional[2] << " (" << args.get("--role") << ")\n";
        } else if (cmd == "user" && args.positional[1] == "remove") {
            if (!db->remove_user(args.positional[2])) throw console::ConsoleError("no user " + args.positional[2]);
            std::cout << "removed " << args.positional[2] << "\n";
        } else if (cmd == "user") {
            for (const auto& u : db->users()) std::cout << u.name << "\t" << console::role_name(u.role) << "\n";
        } else if (cmd == "events") {
            const int limit = args.has("--limit") ? std::atoi(args.get("--limit").c_str()) : 50;
            for (const auto& e : db->events(limit > 0 ? limit : 50))
                std::cout << e.time << "  " << e.client << "  " << e.user << "  " << e.event
                          << (e.detail.empty() ? "" : ": " + e.detail) << "\n";
        }
        return 0;
    } catch (const config::ConfigError& e) {
        std::cerr << "vigil-console: config: " << e.what() << "\n";
    } catch (const std::exception& e) {
        std::cerr << "vigil-console: " << e.what() << "\n";
    }
    return 1;
}

// vigil: the gateway binary. Flags override the TOML file; every error is one line on stderr.
#include <iostream>
#include <sstream>
#include <string>

#include <CLI/CLI.hpp>

#include "config/config.hpp"
#include "core/cli.hpp"
#include "gateway/server.hpp"
#include "tls/ca.hpp"

namespace {

// A TOML literal for a string flag, so "0123" or "true" stay strings.
std::string toml_string(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        if (static_cast<unsigned char>(c) < 0x20) continue;
        out += c;
    }
    return out + "\"";
}

}  // namespace

int main(int argc, char** argv) {
    using namespace vigil::gateway;
    using namespace vigil::config;
    // Flags for the keys set most often; --set reaches every key (applied after the flags).
    struct Flag {
        const char* name;
        const char* key;
        bool is_string;
        const char* help;
    };
    static const Flag flags[] = {
        {"--listen", "proxy.listen", true, "ADDR:PORT (default 127.0.0.1:3128; port 0 picks a free port)"},
        {"--ca-dir", "tls.ca_dir", true, "root.pem, issuing.pem, issuing.key"},
        {"--extra-ca", "tls.extra_ca_file", true, "more CAs trusted for origin certificates"},
        {"--hosts-file", "dns.hosts_file", true, "static name -> address map consulted before DNS"},
        {"--threads", "proxy.threads", false, "0 = one per core"},
        {"--log-level", "log.level", true, "debug, info, warn, error"},
        {"--stats-file", "log.stats_file", true, "counters as JSON, written at shutdown"},
        {"--rules", "rules.path", true, "the rule database (vigil-rules); none = allow all"},
        {"--audit", "audit.path", true, "the SQLite audit log (vigil-audit reads it)"},
    };
    CLI::App app{"Vigil, a TLS-inspecting secure web gateway (explicit HTTP/HTTPS proxy).", "vigil"};
    app.add_option("--config", "TOML configuration (see docs/configuration.md)")->type_name("FILE");  // once
    // Layered like the configuration they override: a flag given twice takes the last value (a
    // service wrapper appends to a default command line). The tools refuse a repeated option.
    for (const auto& f : flags) vigil::core::cli::option(app, f.name, std::string(f.key) + ": " + f.help)->take_last();
    app.add_option("--set", "any configuration key, VAL in TOML syntax (repeatable)")
        ->type_name("SECTION.KEY=VAL")
        ->take_all()
        ->allow_extra_args(false);
    app.add_option("--ready-file", "write {\"listen\": ..., \"pid\": ...} once accepting connections")->type_name("FILE");
    vigil::core::cli::flag(app, "--check-config", "validate configuration, CA and files, then exit");
    if (int rc = vigil::core::cli::parse(app, argc, argv); rc >= 0) return rc;
    const auto args = vigil::core::cli::collect(app);

    Overrides overrides;
    for (const auto& f : flags)
        if (args.has(f.name)) overrides.emplace_back(f.key, f.is_string ? toml_string(args.get(f.name)) : args.get(f.name));
    for (const auto& kv : args.all("--set")) {
        auto eq = kv.find('=');
        if (eq == std::string::npos || eq == 0) vigil::core::cli::usage_error(app, "--set expects SECTION.KEY=VALUE, got \"" + kv + "\"");
        overrides.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
    }
    RunOptions run;
    run.ready_file = args.get("--ready-file");
    run.config_path = args.get("--config");
    run.overrides = overrides;
    try {
        Config cfg = load_config(args.get("--config"), overrides);
        if (args.has("--check-config")) {
            check_startup(cfg);
            std::cout << "vigil: configuration OK\n";
            return 0;
        }
        return run_gateway(cfg, run);
    } catch (const ConfigError& e) {
        // One line per error (a file with several mistakes reports them all).
        std::istringstream lines(e.what());
        for (std::string line; std::getline(lines, line);) std::cerr << "vigil: config: " << line << "\n";
    } catch (const vigil::tls::TlsError& e) {
        std::cerr << "vigil: tls: " << e.what() << "\n";
    } catch (const std::exception& e) {
        std::cerr << "vigil: " << e.what() << "\n";
    }
    return 1;
}

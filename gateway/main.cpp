// vigil: the gateway binary. Flags override the TOML file; every error is one line on stderr.
#include <cstring>
#include <iostream>
#include <sstream>
#include <string>

#include "config/config.hpp"
#include "gateway/server.hpp"
#include "tls/ca.hpp"

namespace {

constexpr const char* kVersion = "vigil 0.1.0";

constexpr const char* kUsage = R"(usage: vigil [options]

Vigil, a TLS-inspecting secure web gateway (explicit HTTP/HTTPS proxy).

options:
  --config FILE          TOML configuration (see docs/configuration.md)
  --listen ADDR:PORT     proxy.listen (default 127.0.0.1:3128; port 0 picks a free port)
  --ca-dir DIR           tls.ca_dir (root.pem, issuing.pem, issuing.key)
  --extra-ca FILE        tls.extra_ca_file: more CAs trusted for origin certificates
  --hosts-file FILE      dns.hosts_file: static name -> address map consulted before DNS
  --rules FILE           rules.path: the rule database (vigil-rules); none = allow all
  --audit FILE           audit.path: the SQLite audit log (vigil-audit reads it)
  --threads N            proxy.threads (0 = one per core)
  --log-level LEVEL      log.level: debug, info, warn, error
  --stats-file FILE      log.stats_file: counters as JSON, written at shutdown
  --set SECTION.KEY=VAL  any configuration key, VAL in TOML syntax (repeatable)
  --ready-file FILE      write {"listen": ..., "pid": ...} once accepting connections
  --check-config         validate configuration, CA and files, then exit
  --help, --version
)";

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
    std::string config_path;
    Overrides overrides;
    RunOptions run;
    bool check_only = false;
    struct Flag {
        const char* name;
        const char* key;
        bool is_string;
    };
    static const Flag flags[] = {
        {"--listen", "proxy.listen", true},       {"--ca-dir", "tls.ca_dir", true},
        {"--extra-ca", "tls.extra_ca_file", true}, {"--hosts-file", "dns.hosts_file", true},
        {"--threads", "proxy.threads", false},    {"--log-level", "log.level", true},
        {"--stats-file", "log.stats_file", true},  {"--rules", "rules.path", true},
        {"--audit", "audit.path", true},
    };
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::cerr << "vigil: " << arg << " needs a value\n";
                std::exit(2);
            }
            return argv[++i];
        };
        if (arg == "--help" || arg == "-h") {
            std::cout << kUsage;
            return 0;
        }
        if (arg == "--version") {
            std::cout << kVersion << "\n";
            return 0;
        }
        if (arg == "--config") { config_path = value(); continue; }
        if (arg == "--check-config") { check_only = true; continue; }
        if (arg == "--ready-file") { run.ready_file = value(); continue; }
        if (arg == "--set") {
            std::string kv = value();
            auto eq = kv.find('=');
            if (eq == std::string::npos || eq == 0) {
                std::cerr << "vigil: --set expects SECTION.KEY=VALUE, got \"" << kv << "\"\n";
                return 2;
            }
            overrides.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
            continue;
        }
        const Flag* flag = nullptr;
        for (const auto& f : flags)
            if (arg == f.name) flag = &f;
        if (!flag) {
            std::cerr << "vigil: unknown option " << arg << " (see vigil --help)\n";
            return 2;
        }
        std::string v = value();
        overrides.emplace_back(flag->key, flag->is_string ? toml_string(v) : v);
    }
    try {
        Config cfg = load_config(config_path, overrides);
        if (check_only) {
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

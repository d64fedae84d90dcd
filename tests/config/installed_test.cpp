// The configuration file the package installs (gateway/deploy/vigil.toml.in): it names every
// key, it loads, and what it sets is the default (only the paths differ: the installed layout).
#include "config/config.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

namespace vigil::config {
namespace {

std::string installed_text() {
    std::ifstream in(std::string(VIGIL_SOURCE_DIR) + "/gateway/deploy/vigil.toml.in");
    std::stringstream s;
    s << in.rdbuf();
    std::string text = s.str();
    // The install-time substitutions (generate.cmake), for the system layout.
    for (auto [from, to] : {std::pair{"@VIGIL_SYSCONFDIR@", "/etc/vigil"}, {"@VIGIL_STATEDIR@", "/var/lib/vigil"},
                           {"@VIGIL_CACHEDIR@", "/var/cache/vigil"}, {"@VIGIL_LOGDIR@", "/var/log/vigil"},
                           {"@VIGIL_LOGROTATEDIR@", "/etc/logrotate.d"}}) {
        for (size_t at; (at = text.find(from)) != std::string::npos;) text.replace(at, std::string(from).size(), to);
    }
    return text;
}

TEST(InstalledConfig, NamesEveryKeySetOrCommentedInItsSection) {
    // (No std::regex: GCC 12 warns inside it under the sanitizers' -O1, and warnings are errors.)
    std::istringstream lines(installed_text());
    std::set<std::string> named;
    std::string section;
    auto is_key_char = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; };
    for (std::string line; std::getline(lines, line);) {
        if (line.size() > 2 && line.front() == '[' && line.find(']') != std::string::npos) {
            section = line.substr(1, line.find(']') - 1);
            continue;
        }
        size_t at = 0;
        if (line.rfind("#", 0) == 0) at = line.find_first_not_of("# ");
        if (at == std::string::npos) continue;
        size_t end = at;
        while (end < line.size() && is_key_char(line[end])) ++end;
        if (end > at && line.compare(end, 3, " = ") == 0) named.insert(section + "." + line.substr(at, end - at));
    }
    for (const auto& k : known_keys()) EXPECT_TRUE(named.count(k)) << k << " is missing from vigil.toml.in";
    const auto all = known_keys();
    for (const auto& k : named) EXPECT_TRUE(std::count(all.begin(), all.end(), k)) << k << " is not a key";
}

TEST(InstalledConfig, LoadsAndSetsTheDefaults) {
    char tmpl[] = "/tmp/vigil-installed-XXXXXX.toml";
    int fd = ::mkstemps(tmpl, 5);
    ASSERT_GE(fd, 0);
    ::close(fd);
    std::ofstream(tmpl) << installed_text();
    Config c = load_config(tmpl, {});
    ::unlink(tmpl);
    const Config d;
    EXPECT_EQ(c.ca_dir, "/var/lib/vigil/ca");
    EXPECT_EQ(c.rules_path, "/var/lib/vigil/rules.db");
    EXPECT_EQ(c.audit_path, "/var/lib/vigil/audit.db");
    EXPECT_EQ(c.cache_dir, "/var/cache/vigil");
    EXPECT_EQ(c.listen, d.listen);
    EXPECT_EQ(c.threads, d.threads);
    EXPECT_EQ(c.allow_clients.size(), d.allow_clients.size());
    EXPECT_EQ(c.allowed_connect_ports.size(), d.allowed_connect_ports.size());
    EXPECT_EQ(c.allow_private_destinations, d.allow_private_destinations);
    EXPECT_EQ(c.shutdown_grace, d.shutdown_grace);
    EXPECT_EQ(c.revocation, d.revocation);
    EXPECT_EQ(c.strictness, d.strictness);
    EXPECT_EQ(c.max_chain_depth, d.max_chain_depth);
    EXPECT_EQ(c.system_store, d.system_store);
    EXPECT_EQ(c.cert_cache_entries, d.cert_cache_entries);
    EXPECT_EQ(c.cert_cache_bytes, d.cert_cache_bytes);
    EXPECT_EQ(c.reload_interval, d.reload_interval);
    EXPECT_EQ(c.hold_bytes, d.hold_bytes);
    EXPECT_EQ(c.scan_limit, d.scan_limit);
    EXPECT_EQ(c.scan_budget, d.scan_budget);
    EXPECT_EQ(c.error_block, d.error_block);
    EXPECT_EQ(c.oversize_block, d.oversize_block);
    EXPECT_EQ(c.re2_max_mem, d.re2_max_mem);
    EXPECT_EQ(c.audit_fail_closed, d.audit_fail_closed);
    EXPECT_EQ(c.audit_queue_limit, d.audit_queue_limit);
    EXPECT_EQ(c.audit_wal_limit, d.audit_wal_limit);
    EXPECT_EQ(c.audit_url_mode, d.audit_url_mode);
    EXPECT_EQ(c.auth_required, d.auth_required);
    EXPECT_EQ(c.admin_listen, d.admin_listen);
    EXPECT_EQ(c.onboarding_host, d.onboarding_host);
    EXPECT_EQ(c.log_level, d.log_level);
    EXPECT_EQ(c.log_json, d.log_json);
    EXPECT_EQ(c.log_file, d.log_file);
    EXPECT_EQ(c.header_read, d.header_read);
    EXPECT_EQ(c.idle, d.idle);
    EXPECT_EQ(c.io, d.io);
    EXPECT_EQ(c.fetch, d.fetch);
    EXPECT_EQ(c.max_header_bytes, d.max_header_bytes);
    EXPECT_EQ(c.max_connections, d.max_connections);
    EXPECT_EQ(c.cache_max_bytes, d.cache_max_bytes);
    EXPECT_EQ(c.cache_memory_bytes, d.cache_memory_bytes);
    EXPECT_EQ(c.cache_max_object_bytes, d.cache_max_object_bytes);
    EXPECT_EQ(c.compress, d.compress);
    EXPECT_EQ(c.compress_https, d.compress_https);
    EXPECT_EQ(c.parent_selection, d.parent_selection);
    EXPECT_EQ(c.pac.proxies, d.pac.proxies);
    EXPECT_EQ(c.pac.direct_networks.size(), d.pac.direct_networks.size());
    EXPECT_EQ(c.pac.fallback_direct, d.pac.fallback_direct);
}

TEST(PacConfig, RefusesWhatAPacFileCannotSay) {
    auto error = [](const std::string& key, const std::string& value) {
        try {
            load_config("", {{key, value}});
        } catch (const ConfigError& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    EXPECT_NE(error("pac.proxies", R"(["gw1.corp.example"])").find("expected HOST:PORT"), std::string::npos);
    EXPECT_NE(error("pac.direct_hosts", R"(["*.corp.example"])").find("no patterns"), std::string::npos);
    EXPECT_NE(error("pac.direct_networks", R"(["fd00::/8"])").find("IPv6"), std::string::npos);
    EXPECT_EQ(error("pac.proxies", R"(["gw1.corp.example:3128", "[2001:db8::1]:3128"])"), "");
}

}  // namespace
}  // namespace vigil::config

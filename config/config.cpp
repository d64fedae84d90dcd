// TOML configuration loading with toml++: every key typed, range-checked, unknown keys refused.
#include "config/config.hpp"
#include "config/values.hpp"
#include "core/encoding.hpp"

#include <algorithm>
#include <cctype>
#include <functional>
#include <map>
#include <sstream>
#include <fstream>
#include <cstring>
#include <cerrno>

#include <toml++/toml.h>

namespace vigil::config {
namespace {

using io::lower;
using io::parse_authority;
using io::parse_rate;

using Setter = std::function<void(Config&, const Where&)>;

const std::map<std::string, Setter>& schema() {
    static const std::map<std::string, Setter> s = {
        {"proxy.listen", [](Config& c, const Where& w) { c.listen = get_string(w); }},
        {"proxy.threads", [](Config& c, const Where& w) { c.threads = unsigned(get_int(w, 0, 256)); }},
        {"proxy.allow_clients", [](Config& c, const Where& w) { c.allow_clients = get_cidrs(w); }},
        {"proxy.allowed_connect_ports", [](Config& c, const Where& w) { c.allowed_connect_ports = get_ports(w); }},
        {"proxy.allowed_http_ports", [](Config& c, const Where& w) { c.allowed_http_ports = get_ports(w); }},
        {"proxy.allow_private_destinations",
         [](Config& c, const Where& w) { c.allow_private_destinations = get_bool(w); }},
        {"proxy.shutdown_grace", [](Config& c, const Where& w) { c.shutdown_grace = get_seconds(w); }},
        {"proxy.proxy_protocol",
         [](Config& c, const Where& w) {
             auto v = get_string(w);
             if (v != "off" && v != "v1" && v != "v2" && v != "optional")
                 w.fail("expected \"off\", \"v1\", \"v2\" or \"optional\"");
             c.proxy_protocol = v;
         }},
        {"proxy.trusted_balancers", [](Config& c, const Where& w) { c.trusted_balancers = get_cidrs(w); }},
        {"proxy.drain_delay",
         [](Config& c, const Where& w) { c.drain_delay = std::chrono::seconds(get_int(w, 0, 3600)); }},
        {"tls.ca_dir", [](Config& c, const Where& w) { c.ca_dir = get_path(w); }},
        {"tls.extra_ca_file", [](Config& c, const Where& w) { c.extra_ca_file = get_path(w); }},
        {"tls.non_tls",
         [](Config& c, const Where& w) {
             auto v = get_string(w);
             if (v != "reject" && v != "tunnel") w.fail("expected \"reject\" or \"tunnel\"");
             c.non_tls_tunnel = v == "tunnel";
         }},
        {"tls.client_alpn", [](Config& c, const Where& w) { c.client_alpn = get_alpn(w); }},
        {"tls.origin_alpn",
         [](Config& c, const Where& w) {
             const auto list = get_alpn(w);
             if (std::find(list.begin(), list.end(), "http/1.1") == list.end())
                 w.fail("must list \"http/1.1\" (origins that do not speak h2, and WebSocket upgrades, need it)");
             c.origin_h2 = std::find(list.begin(), list.end(), "h2") != list.end();
         }},
        {"http2.max_concurrent_streams",
         [](Config& c, const Where& w) { c.http2.max_streams = uint32_t(get_int(w, 1, 1000)); }},
        {"http2.origin_connections",
         [](Config& c, const Where& w) { c.http2.origin_connections = uint32_t(get_int(w, 1, 256)); }},
        {"http2.stream_window",
         [](Config& c, const Where& w) { c.http2.stream_window = uint32_t(get_int(w, 16384, 16 << 20)); }},
        {"http2.connection_window",
         [](Config& c, const Where& w) { c.http2.connection_window = uint32_t(get_int(w, 65535, 64 << 20)); }},
        {"tls.cert_cache_entries",
         [](Config& c, const Where& w) { c.cert_cache_entries = size_t(get_int(w, 16, 10'000'000)); }},
        {"tls.cert_cache_bytes",
         [](Config& c, const Where& w) { c.cert_cache_bytes = size_t(get_int(w, 65536, int64_t(1) << 36)); }},
        {"tls.revocation",
         [](Config& c, const Where& w) {
             auto v = get_string(w);
             if (v != "staple" && v != "off" && v != "ocsp") w.fail("expected \"off\", \"staple\" or \"ocsp\"");
             c.revocation = v == "off" ? tls::Revocation::off : v == "ocsp" ? tls::Revocation::ocsp : tls::Revocation::staple;
         }},
        {"tls.system_store", [](Config& c, const Where& w) { c.system_store = get_bool(w); }},
        {"tls.max_chain_depth", [](Config& c, const Where& w) { c.max_chain_depth = int(get_int(w, 1, 16)); }},
        {"tls.strictness",
         [](Config& c, const Where& w) {
             auto v = get_string(w);
             if (v != "browser" && v != "strict") w.fail("expected \"browser\" or \"strict\"");
             c.strictness = v == "strict" ? tls::Strictness::strict : tls::Strictness::browser;
         }},
        {"tls.ocsp_unknown",
         [](Config& c, const Where& w) {
             auto v = get_string(w);
             if (v != "allow" && v != "block") w.fail("expected \"allow\" or \"block\"");
             c.ocsp_unknown_blocks = v == "block";
         }},
        {"tls.aia_fetch", [](Config& c, const Where& w) { c.aia_fetch = get_bool(w); }},
        {"tls.origin_errors", [](Config& c, const Where& w) { c.origin_error_warn = get_origin_errors(w); }},
        {"tls.origin_exceptions", [](Config& c, const Where& w) { c.origin_exceptions = get_origin_exceptions(w); }},
        {"dns.hosts_file", [](Config& c, const Where& w) { c.hosts_file = get_path(w); }},
        {"log.level",
         [](Config& c, const Where& w) {
             c.log_level = get_string(w);
             if (c.log_level != "debug" && c.log_level != "info" && c.log_level != "warn" && c.log_level != "error")
                 w.fail("expected one of debug, info, warn, error");
         }},
        {"log.format",
         [](Config& c, const Where& w) {
             auto v = get_string(w);
             if (v != "text" && v != "json") w.fail("expected \"text\" or \"json\"");
             c.log_json = v == "json";
         }},
        {"log.file", [](Config& c, const Where& w) { c.log_file = get_path(w); }},
        {"log.stats_file", [](Config& c, const Where& w) { c.stats_file = get_path(w); }},
        {"timeouts.header_read", [](Config& c, const Where& w) { c.header_read = get_seconds(w); }},
        {"timeouts.idle", [](Config& c, const Where& w) { c.idle = get_seconds(w); }},
        {"timeouts.body_stall", [](Config& c, const Where& w) { c.body_stall = get_seconds(w); }},
        {"limits.body_stall_bytes",
         [](Config& c, const Where& w) { c.body_stall_bytes = size_t(get_int(w, 1, 1 << 30)); }},
        {"timeouts.connect", [](Config& c, const Where& w) { c.connect = get_seconds(w); }},
        {"timeouts.handshake", [](Config& c, const Where& w) { c.handshake = get_seconds(w); }},
        {"timeouts.io", [](Config& c, const Where& w) { c.io = get_seconds(w); }},
        {"timeouts.tunnel_idle", [](Config& c, const Where& w) { c.tunnel_idle = get_seconds(w); }},
        {"timeouts.fetch", [](Config& c, const Where& w) { c.fetch = get_seconds(w); }},
        {"rules.path", [](Config& c, const Where& w) { c.rules_path = get_path(w); }},
        {"rules.reload_interval", [](Config& c, const Where& w) { c.reload_interval = get_seconds(w); }},
        {"rules.source",
         [](Config& c, const Where& w) {
             c.rules_source = get_string(w);
             if (c.rules_source.rfind("https://", 0) == 0)
                 w.fail("https:// is not supported: serve the bundle over http:// (its signature protects it) or "
                        "share it as a file");
             if (c.rules_source.rfind("http://", 0) != 0 && !c.rules_source.empty()) c.rules_source = get_path(w);
         }},
        {"rules.source_key",
         [](Config& c, const Where& w) {
             c.rules_source_key = get_string(w);
             auto raw = core::base64_decode(c.rules_source_key);
             if (!raw || raw->size() != 32)
                 w.fail("expected the base64 of a 32-byte Ed25519 public key (vigil-rules publish prints it)");
         }},
        {"rules.source_interval", [](Config& c, const Where& w) { c.rules_source_interval = get_seconds(w); }},
        {"inspect.hold_bytes",
         [](Config& c, const Where& w) { c.hold_bytes = size_t(get_int(w, 0, int64_t(64) << 20)); }},
        {"inspect.scan_budget_ms",
         [](Config& c, const Where& w) { c.scan_budget = std::chrono::milliseconds(get_int(w, 0, 600000)); }},
        {"inspect.scan_limit",
         [](Config& c, const Where& w) { c.scan_limit = size_t(get_int(w, 1024, int64_t(1) << 32)); }},
        {"inspect.oversize",
         [](Config& c, const Where& w) {
             auto v = get_string(w);
             if (v != "allow" && v != "block") w.fail("expected \"allow\" or \"block\"");
             c.oversize_block = v == "block";
         }},
        {"inspect.on_error",
         [](Config& c, const Where& w) {
             auto v = get_string(w);
             if (v != "allow" && v != "block") w.fail("expected \"allow\" or \"block\"");
             c.error_block = v == "block";
         }},
        {"inspect.warn_duration", [](Config& c, const Where& w) { c.warn_duration = get_seconds(w); }},
        {"inspect.warn_key_file", [](Config& c, const Where& w) { c.warn_key_file = get_path(w); }},
        {"inspect.re2_max_mem",
         [](Config& c, const Where& w) { c.re2_max_mem = get_int(w, 1 << 20, int64_t(1) << 34); }},
        {"audit.path", [](Config& c, const Where& w) { c.audit_path = get_path(w); }},
        {"audit.jsonl", [](Config& c, const Where& w) { c.audit_jsonl = get_path(w); }},
        {"audit.syslog",
         [](Config& c, const Where& w) {
             c.audit_syslog = get_string(w);
             if (!c.audit_syslog.empty() && c.audit_syslog.rfind("udp://", 0) != 0 && c.audit_syslog.rfind("tcp://", 0) != 0)
                 w.fail("expected udp://HOST:PORT or tcp://HOST:PORT");
         }},
        {"audit.ship",
         [](Config& c, const Where& w) {
             c.audit_ship = get_string(w);
             if (!c.audit_ship.empty() && c.audit_ship.rfind("tcp://", 0) != 0) w.fail("expected tcp://HOST:PORT");
         }},
        {"audit.ship_name", [](Config& c, const Where& w) { c.audit_ship_name = get_string(w); }},
        {"audit.overflow",
         [](Config& c, const Where& w) {
             auto v = get_string(w);
             if (v != "block" && v != "drop") w.fail("expected \"block\" or \"drop\"");
             c.audit_overflow_drop = v == "drop";
         }},
        {"audit.on_failure",
         [](Config& c, const Where& w) {
             auto v = get_string(w);
             if (v != "fail-closed" && v != "fail-open") w.fail("expected \"fail-closed\" or \"fail-open\"");
             c.audit_fail_closed = v == "fail-closed";
         }},
        {"audit.url_mode",
         [](Config& c, const Where& w) {
             c.audit_url_mode = get_string(w);
             if (c.audit_url_mode != "full" && c.audit_url_mode != "strip-query" && c.audit_url_mode != "host-only")
                 w.fail("expected \"full\", \"strip-query\" or \"host-only\"");
         }},
        {"audit.queue_limit",
         [](Config& c, const Where& w) { c.audit_queue_limit = size_t(get_int(w, 16, 10'000'000)); }},
        {"audit.wal_limit",
         [](Config& c, const Where& w) { c.audit_wal_limit = uint64_t(get_int(w, 1 << 20, int64_t(1) << 34)); }},
        {"audit.sync", [](Config& c, const Where& w) { c.audit_sync = get_bool(w); }},
        {"auth.required", [](Config& c, const Where& w) { c.auth_required = get_bool(w); }},
        {"auth.exempt_clients", [](Config& c, const Where& w) { c.auth_exempt_clients = get_cidrs(w); }},
        {"auth.cache_seconds", [](Config& c, const Where& w) { c.auth_cache = get_seconds(w); }},
        {"auth.max_failures", [](Config& c, const Where& w) { c.auth_max_failures = int(get_int(w, 1, 1000)); }},
        {"auth.methods",
         [](Config& c, const Where& w) {
             auto v = get_string_list(w);
             std::set<std::string> seen;
             for (const auto& m : v)
                 if ((m != "negotiate" && m != "basic") || !seen.insert(m).second)
                     w.fail("expected a list of \"negotiate\" and \"basic\", each once");
             if (v.empty()) w.fail("at least one method is needed");
             c.auth_methods = v;
         }},
        {"auth.kerberos_keytab", [](Config& c, const Where& w) { c.kerberos.keytab = get_path(w); }},
        {"auth.kerberos_principal", [](Config& c, const Where& w) { c.kerberos.principal = get_string(w); }},
        {"auth.user_name",
         [](Config& c, const Where& w) {
             auto v = get_string(w);
             if (v != "principal" && v != "short") w.fail("expected \"principal\" or \"short\"");
             c.auth_short_names = v == "short";
         }},
        {"auth.directory_unavailable",
         [](Config& c, const Where& w) {
             auto v = get_string(w);
             if (v != "deny" && v != "allow-authenticated") w.fail("expected \"deny\" or \"allow-authenticated\"");
             c.directory_unavailable_allow = v == "allow-authenticated";
         }},
        {"ldap.url", [](Config& c, const Where& w) { c.ldap.url = get_string(w); }},
        {"ldap.start_tls", [](Config& c, const Where& w) { c.ldap.start_tls = get_bool(w); }},
        {"ldap.ca_file", [](Config& c, const Where& w) { c.ldap.ca_file = get_path(w); }},
        {"ldap.bind_dn", [](Config& c, const Where& w) { c.ldap.bind_dn = get_string(w); }},
        {"ldap.bind_password_file", [](Config& c, const Where& w) { c.ldap.bind_password = get_secret_file(w); }},
        {"ldap.base_dn", [](Config& c, const Where& w) { c.ldap.base_dn = get_string(w); }},
        {"ldap.user_filter", [](Config& c, const Where& w) { c.ldap.user_filter = get_string(w); }},
        {"ldap.group_base_dn", [](Config& c, const Where& w) { c.ldap.group_base_dn = get_string(w); }},
        {"ldap.nested",
         [](Config& c, const Where& w) {
             auto v = get_string(w);
             if (v != "walk" && v != "in-chain") w.fail("expected \"walk\" (OpenLDAP, FreeIPA) or \"in-chain\" (Active Directory)");
             c.ldap.nested = v;
         }},
        {"ldap.max_depth", [](Config& c, const Where& w) { c.ldap.max_depth = int(get_int(w, 1, 20)); }},
        {"ldap.group_name_attribute", [](Config& c, const Where& w) { c.ldap.group_name_attribute = get_string(w); }},
        {"ldap.member_attribute", [](Config& c, const Where& w) { c.ldap.member_attribute = get_string(w); }},
        {"ldap.cache_ttl", [](Config& c, const Where& w) { c.ldap.cache_ttl = get_seconds(w); }},
        {"ldap.negative_ttl", [](Config& c, const Where& w) { c.ldap.negative_ttl = get_seconds(w); }},
        {"ldap.stale_ttl", [](Config& c, const Where& w) { c.ldap.stale_ttl = get_seconds(w); }},
        {"ldap.max_lookups_per_second",
         [](Config& c, const Where& w) { c.ldap.max_lookups_per_second = int(get_int(w, 1, 100000)); }},
        {"ldap.timeout", [](Config& c, const Where& w) { c.ldap.timeout = get_seconds(w); }},
        {"admin.listen", [](Config& c, const Where& w) { c.admin_listen = get_string(w); }},
        {"admin.allow", [](Config& c, const Where& w) { c.admin_allow = get_cidrs(w); }},
        {"console.listen", [](Config& c, const Where& w) { c.console.listen = get_string(w); }},
        {"console.allow", [](Config& c, const Where& w) { c.console.allow = get_cidrs(w); }},
        {"console.users", [](Config& c, const Where& w) { c.console.users = get_path(w); }},
        {"console.host", [](Config& c, const Where& w) { c.console.host = get_string(w); }},
        {"console.cert_file", [](Config& c, const Where& w) { c.console.cert_file = get_path(w); }},
        {"console.key_file", [](Config& c, const Where& w) { c.console.key_file = get_path(w); }},
        {"console.session_minutes",
         [](Config& c, const Where& w) { c.console.session = std::chrono::minutes(get_int(w, 5, 7 * 24 * 60)); }},
        {"console.viewer_groups", [](Config& c, const Where& w) { c.console.viewer_groups = get_string_list(w); }},
        {"console.analyst_groups", [](Config& c, const Where& w) { c.console.analyst_groups = get_string_list(w); }},
        {"console.admin_groups", [](Config& c, const Where& w) { c.console.admin_groups = get_string_list(w); }},
        {"console.max_failures", [](Config& c, const Where& w) { c.console.max_failures = int(get_int(w, 1, 1000)); }},
        {"onboarding.host", [](Config& c, const Where& w) { c.onboarding_host = get_string(w); }},
        {"pac.proxies",
         [](Config& c, const Where& w) {
             c.pac.proxies.clear();
             for (const auto& p : get_string_list(w)) {
                 auto a = parse_authority(p, std::nullopt);
                 if (!a || a->host.empty()) w.fail("\"" + p + "\": expected HOST:PORT");
                 c.pac.proxies.push_back(p);
             }
         }},
        {"pac.direct_hosts", [](Config& c, const Where& w) { c.pac.direct_hosts = get_host_list(w); }},
        {"pac.direct_networks",
         [](Config& c, const Where& w) {
             c.pac.direct_networks = get_cidrs(w);
             for (const auto& n : c.pac.direct_networks)
                 if (n.base.is_v6())
                     w.fail("IPv6 networks cannot be tested by a PAC file's isInNet(); list IPv4 networks");
         }},
        {"pac.plain_hostnames_direct", [](Config& c, const Where& w) { c.pac.plain_hostnames_direct = get_bool(w); }},
        {"pac.fallback_direct", [](Config& c, const Where& w) { c.pac.fallback_direct = get_bool(w); }},
        {"pages.organisation", [](Config& c, const Where& w) { c.pages.organisation = get_string(w); }},
        {"pages.logo_file", [](Config& c, const Where& w) { c.pages.logo = get_logo(w); }},
        {"pages.help_url", [](Config& c, const Where& w) { c.pages.help_url = get_url(w, false); }},
        {"pages.template_dir", [](Config& c, const Where& w) { c.pages.templates = get_page_templates(w); }},
        {"pages.request_access_url",
         [](Config& c, const Where& w) { c.pages.request_access_url = get_url(w, true); }},
        {"limits.max_header_bytes",
         [](Config& c, const Where& w) { c.max_header_bytes = size_t(get_int(w, 1024, 1 << 20)); }},
        {"limits.max_connections",
         [](Config& c, const Where& w) { c.max_connections = size_t(get_int(w, 1, 1'000'000)); }},
        {"limits.max_connections_per_client",
         [](Config& c, const Where& w) { c.max_connections_per_client = size_t(get_int(w, 1, 1'000'000)); }},
        {"cache.enabled", [](Config& c, const Where& w) { c.cache = get_bool(w); }},
        {"cache.dir", [](Config& c, const Where& w) { c.cache_dir = get_path(w); }},
        {"cache.max_bytes", [](Config& c, const Where& w) { c.cache_max_bytes = get_size(w, 1 << 20); }},
        {"cache.memory_bytes", [](Config& c, const Where& w) { c.cache_memory_bytes = get_size(w, 1 << 20); }},
        {"cache.max_object_bytes", [](Config& c, const Where& w) { c.cache_max_object_bytes = get_size(w, 1024); }},
        {"compress.enabled", [](Config& c, const Where& w) { c.compress = get_bool(w); }},
        {"compress.https", [](Config& c, const Where& w) { c.compress_https = get_bool(w); }},
        {"compress.min_bytes",
         [](Config& c, const Where& w) { c.compress_min_bytes = uint64_t(get_int(w, 0, int64_t(1) << 30)); }},
        {"upstream.parents", [](Config& c, const Where& w) { c.parents = get_parents(w); }},
        {"upstream.selection",
         [](Config& c, const Where& w) {
             auto v = get_string(w);
             if (v != "round-robin" && v != "least-connections" && v != "host-hash")
                 w.fail("expected \"round-robin\", \"least-connections\" or \"host-hash\"");
             c.parent_selection = v;
         }},
        {"upstream.health_interval", [](Config& c, const Where& w) { c.parent_health_interval = get_seconds(w); }},
        {"upstream.direct_fallback", [](Config& c, const Where& w) { c.parent_direct_fallback = get_bool(w); }},
        {"upstream.direct_hosts", [](Config& c, const Where& w) { c.direct_hosts = get_host_list(w); }},
        {"upstream.parent_hosts", [](Config& c, const Where& w) { c.parent_hosts = get_host_list(w); }},
        {"limits.client_rate", [](Config& c, const Where& w) { c.rates.client_rate = get_rate(w); }},
        {"limits.group_rate", [](Config& c, const Where& w) { c.rates.group_rates = get_group_rates(w); }},
        {"limits.max_headers", [](Config& c, const Where& w) { c.max_headers = size_t(get_int(w, 8, 1000)); }},
    };
    return s;
}

// Parses one --set value as TOML; a bare word that is not TOML is a string.
toml::table parse_value(const std::string& key, const std::string& value) {
    try {
        return toml::parse("v = " + value, std::string_view("--set " + key));
    } catch (const toml::parse_error&) {
        toml::table t;
        t.insert("v", value);
        return t;
    }
}

}  // namespace

const std::vector<std::string>& origin_error_classes() {
    static const std::vector<std::string> c = {"expired", "not_yet_valid", "hostname_mismatch", "untrusted",
                                               "self_signed", "revoked", "weak_crypto", "malformed", "invalid"};
    return c;
}

const std::set<std::string>& page_variables() {
    static const std::set<std::string> v = {
        "action",    "address", "brand",    "category",           "code",         "contact", "continue_url",
        "details",   "facts",   "help_url", "logo",               "organisation", "reason",  "reference",
        "request_access_url",   "rule",     "status",             "time",         "title"};
    return v;
}

const std::set<std::string>& page_html_variables() {
    static const std::set<std::string> v = {"details", "facts"};
    return v;
}

const std::vector<std::string>& page_template_names() {
    static const std::vector<std::string> v = {"block", "warn", "error", "refuse", "aborted", "page"};
    return v;
}

std::vector<std::string> known_keys() {
    std::vector<std::string> keys;
    for (const auto& [key, setter] : schema()) keys.push_back(key);
    return keys;
}

Config::Config()
    : allow_clients{*Cidr::parse("127.0.0.0/8"), *Cidr::parse("::1/128")},
      allowed_connect_ports{{443, 443}},
      allowed_http_ports{{80, 80}, {1024, 65535}},
      admin_allow{*Cidr::parse("127.0.0.0/8"), *Cidr::parse("::1/128")} {
    console.allow = admin_allow;
    for (const char* n : {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8"})
        pac.direct_networks.push_back(*Cidr::parse(n));
}

std::map<std::string, std::string> key_values(const std::string& path, const Overrides& overrides) {
    std::map<std::string, std::string> out;
    if (!path.empty()) {
        toml::table root;
        try {
            root = toml::parse_file(path);
        } catch (const std::exception& e) {
            throw ConfigError(path + ": " + e.what());
        }
        for (const auto& [section, node] : root) {
            const toml::table* tbl = node.as_table();
            if (!tbl) continue;
            for (const auto& [name, value] : *tbl) {
                std::ostringstream text;
                value.visit([&](const auto& n) { text << n; });
                out[std::string(section.str()) + "." + std::string(name.str())] = text.str();
            }
        }
    }
    for (const auto& [key, value] : overrides) out[key] = value;
    return out;
}

bool applies_live(const std::string& key) { return key == "log.level" || key == "log.format"; }

Config load_config(const std::string& path, const Overrides& overrides) {
    toml::table root;
    if (!path.empty()) {
        if (std::ifstream probe(path); !probe) {
            const int err = errno;
            throw ConfigError("cannot open config " + path + ": " + std::strerror(err));
        }
        try {
            root = toml::parse_file(path);
        } catch (const toml::parse_error& e) {
            std::ostringstream out;
            out << path << ":" << e.source().begin.line << ": " << e.description();
            throw ConfigError(out.str());
        } catch (const std::exception& e) {
            throw ConfigError(path + ": " + e.what());
        }
    }
    Config cfg;
    // Every key is checked, and every error reported at once, in file order (at most 20): an
    // administrator fixes the file in one pass, not one error per restart.
    std::vector<std::pair<uint32_t, std::string>> errors;
    auto check = [&](const toml::node& node, const std::function<void()>& apply) {
        try {
            apply();
        } catch (const ConfigError& e) {
            errors.emplace_back(node.source().begin.line, e.what());
        }
    };
    for (const auto& [section, node] : root) {
        const toml::table* tbl = node.as_table();
        if (!tbl) {
            check(node, [&] { Where{path, node, std::string(section.str())}.fail("expected a [section]"); });
            continue;
        }
        for (const auto& [name, value] : *tbl) {
            std::string key = std::string(section.str()) + "." + std::string(name.str());
            auto it = schema().find(key);
            check(value, [&] {
                if (it == schema().end()) Where{path, value, key}.fail("unknown key");
                it->second(cfg, Where{path, value, key});
            });
        }
    }
    if (!errors.empty()) {
        std::stable_sort(errors.begin(), errors.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
        constexpr size_t kShown = 20;
        std::string all;
        for (size_t i = 0; i < errors.size() && i < kShown; ++i) all += (i ? "\n" : "") + errors[i].second;
        if (errors.size() > kShown) all += "\n(and " + std::to_string(errors.size() - kShown) + " more)";
        throw ConfigError(all);
    }
    for (const auto& [key, value] : overrides) {
        auto it = schema().find(key);
        toml::table t = parse_value(key, value);
        const toml::node& node = *t.get("v");
        if (it == schema().end()) Where{"--set", node, key}.fail("unknown key");
        it->second(cfg, Where{"--set " + key, node, key});
    }
    return cfg;
}

}  // namespace vigil::config

// The gateway's configuration: one immutable struct, loaded from TOML and overridden by flags.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "config/parts.hpp"
#include "core/template.hpp"
#include "identity/options.hpp"
#include "io/address.hpp"
#include "io/rate.hpp"
#include "tls/contexts.hpp"

namespace vigil::config {

using io::Cidr;
using io::PortRange;

struct Config {
    // [proxy]
    std::string listen = "127.0.0.1:3128";
    unsigned threads = 0;  // 0 = one per core
    std::vector<Cidr> allow_clients;  // default: loopback only
    std::vector<PortRange> allowed_connect_ports;  // default: 443
    std::vector<PortRange> allowed_http_ports;     // default: 80, 1024-65535
    bool allow_private_destinations = false;
    std::chrono::seconds shutdown_grace{30};
    // proxy.proxy_protocol = "off" | "v1" | "v2" | "optional": a balancer's PROXY header names
    // the client; accepted only from trusted_balancers (others are refused, or with "optional"
    // taken as direct clients).
    std::string proxy_protocol = "off";
    std::vector<Cidr> trusted_balancers;
    // After SIGTERM, keep accepting and answering for this long while /readyz says 503, so a
    // balancer's health check moves new connections elsewhere first (0: stop accepting at once).
    std::chrono::seconds drain_delay{0};
    // [tls]
    std::string ca_dir = "var/ca";
    std::string extra_ca_file;
    bool non_tls_tunnel = false;  // tls.non_tls = "reject" | "tunnel"
    std::vector<std::string> client_alpn{"h2", "http/1.1"};  // tls.client_alpn, in order of preference
    bool origin_h2 = true;  // tls.origin_alpn lists h2: offered to origins, used if chosen
    Http2Settings http2;  // [http2]
    std::vector<std::string> origin_error_warn;          // tls.origin_errors: classes set to "warn"
    tls::Revocation revocation = tls::Revocation::staple;  // tls.revocation = "off" | "staple" | "ocsp"
    bool system_store = true;                 // tls.system_store: the system's anchors beside extra_ca_file
    int max_chain_depth = 8;                  // tls.max_chain_depth
    tls::Strictness strictness = tls::Strictness::browser;  // tls.strictness = "browser" | "strict"
    bool ocsp_unknown_blocks = false;                    // tls.ocsp_unknown = "allow" | "block"
    bool aia_fetch = true;                               // tls.aia_fetch
    std::vector<OriginException> origin_exceptions;      // tls.origin_exceptions
    size_t cert_cache_entries = 20000;
    size_t cert_cache_bytes = 32u << 20;
    // [dns]
    std::string hosts_file;
    // [log]
    std::string log_level = "info";
    bool log_json = false;  // log.format = "text" | "json"
    std::string log_file;   // "" = stderr (the journal under systemd)
    std::string stats_file;
    // [timeouts]
    std::chrono::seconds header_read{30};
    std::chrono::seconds body_stall{10};  // a request body must bring body_stall_bytes in every such window
    size_t body_stall_bytes = 1024;
    std::chrono::seconds idle{60};
    std::chrono::seconds connect{10};
    std::chrono::seconds handshake{10};
    std::chrono::seconds io{120};
    std::chrono::seconds tunnel_idle{600};
    std::chrono::seconds fetch{5};  // AIA and OCSP fetches, whole
    // [rules]
    std::string rules_path;                  // "" = no rules: allow everything (said at start)
    std::chrono::seconds reload_interval{5};  // how often the database's version is checked
    // rules.source: a signed ruleset bundle (vigil-rules publish), a file path or http:// URL,
    // pulled every source_interval, verified with source_key (base64 Ed25519) and written into
    // rules.path whole; never an older version than the one applied.
    std::string rules_source;
    std::string rules_source_key;
    std::chrono::seconds rules_source_interval{60};
    // [inspect]
    size_t hold_bytes = 256 * 1024;          // body bytes held before forwarding, for a clean block page
    size_t scan_limit = 32u << 20;           // decoded bytes scanned per body
    bool oversize_block = false;             // inspect.oversize = "allow" | "block"
    bool error_block = true;                 // inspect.on_error = "block" | "allow"
    std::chrono::milliseconds scan_budget{2000};  // inspect.scan_budget_ms per body; 0 = none
    int64_t re2_max_mem = 256 << 20;
    std::chrono::seconds warn_duration{3600};  // how long "Continue" on a warn page lasts
    std::string warn_key_file;  // signs Continue links and grants; "" = warn.key beside ca_dir
    // [audit]
    std::string audit_path;            // SQLite audit log; "" = none
    std::string audit_jsonl;           // JSON-lines copy
    std::string audit_syslog;          // udp://host:port or tcp://host:port (RFC 5424)
    std::string audit_ship;            // tcp://host:port: the central trail, shipped from the log (at least once)
    std::string audit_ship_name;       // the gateway's name in shipped records; "" = the host name
    bool audit_overflow_drop = false;  // audit.overflow = "block" (back-pressure) | "drop"
    bool audit_fail_closed = true;     // audit.on_failure = "fail-closed" | "fail-open"
    std::string audit_url_mode = "full";
    size_t audit_queue_limit = 65536;
    uint64_t audit_wal_limit = 32ull << 20;  // bytes of write-ahead log before the writer waits for a checkpoint
    bool audit_sync = false;                 // audit.sync = true: fsync every commit (smaller crash window)
    // [auth]
    bool auth_required = false;
    std::vector<Cidr> auth_exempt_clients;
    std::chrono::seconds auth_cache{300};
    int auth_max_failures = 5;  // per client address per minute, then 429
    std::vector<std::string> auth_methods{"basic"};  // "negotiate" (Kerberos), "basic"; offered in this order
    identity::KerberosOptions kerberos;              // auth.kerberos_keytab, auth.kerberos_principal
    bool auth_short_names = false;                   // auth.user_name = "principal" | "short"
    bool directory_unavailable_allow = false;        // auth.directory_unavailable = "deny" | "allow-authenticated"
    // [ldap]: the directory for groups and Basic passwords (docs/identity.md)
    identity::DirectoryOptions ldap;
    // [admin]
    std::string admin_listen = "127.0.0.1:9090";  // "" disables the admin listener
    std::vector<Cidr> admin_allow;                 // default: loopback only
    // [console]: vigil-console, the administrators' web console (docs/console.md)
    struct Console {
        std::string listen = "127.0.0.1:9443";
        std::vector<Cidr> allow;              // default: loopback only
        std::string users;                    // console.db; "" = beside ca_dir
        std::string host = "localhost";       // the name in its certificate (minted from the CA)
        std::string cert_file, key_file;      // a certificate of your own instead
        std::chrono::minutes session{480};
        int max_failures = 5;                 // failed sign-ins per address per minute, then 429
        // Directory sign-in ([ldap]): members of these groups get the role (the highest wins).
        std::vector<std::string> viewer_groups, analyst_groups, admin_groups;
    } console;
    // [onboarding]
    std::string onboarding_host = "vigil.invalid";  // "" disables the page
    // [pac]: the proxy auto-configuration file served as /proxy.pac and /wpad.dat
    struct Pac {
        std::vector<std::string> proxies;       // "host:port" in failover order; empty: the name the
                                                // file was fetched by, at the proxy's port
        std::vector<std::string> direct_hosts;  // exact names, or ".suffix" (the domain and below)
        std::vector<Cidr> direct_networks;      // IPv4 literals in these go DIRECT
        bool plain_hostnames_direct = true;     // "intranet" (no dot) goes DIRECT
        bool fallback_direct = false;           // every proxy down: DIRECT (default: fail closed)
    } pac;
    // [pages]: how Vigil's own pages name the organisation and where they send people
    struct Pages {
        std::string organisation;        // "Acme IT"; "" = no name
        std::string logo;                // the logo file's bytes as a data: URI (read at load)
        std::string help_url;            // "Contact your IT team" links here
        std::string request_access_url;  // block pages: {url}, {category}, {transaction} filled in
        // template_dir: the templates found there, by page kind ("block", ..., "page"); read and
        // checked at load.
        std::map<std::string, std::shared_ptr<const core::Template>> templates;
    } pages;
    // [limits]
    size_t max_header_bytes = 64 * 1024;
    size_t max_headers = 100;
    size_t max_connections = 20000;            // all clients together
    size_t max_connections_per_client = 512;   // one client address
    // Bandwidth per client address and per group, bytes per second each way; 0 = no limit.
    io::RateLimits rates;  // limits.client_rate, limits.group_rate
    // Parent proxies: all traffic but direct_hosts goes through them (docs/traffic.md).
    std::vector<ParentConfig> parents;
    std::string parent_selection = "round-robin";  // or "least-connections", "host-hash"
    std::chrono::seconds parent_health_interval{5};
    bool parent_direct_fallback = false;  // all parents down: go direct instead of refusing
    std::vector<std::string> direct_hosts;  // exact names, or ".suffix"
    std::vector<std::string> parent_hosts;  // when set, only these go through the parents
    // Compressing uncompressed text responses for clients that accept gzip or br.
    bool compress = true;
    bool compress_https = false;  // inside the bump too (off: BREACH, see docs/traffic.md)
    uint64_t compress_min_bytes = 1024;
    // The HTTP cache (docs/caching.md): plain and bumped responses scanned clean.
    bool cache = true;
    std::string cache_dir;                      // "" keeps the cache in memory only
    uint64_t cache_max_bytes = 1ull << 30;      // on disk
    uint64_t cache_memory_bytes = 64ull << 20;  // bodies held in memory
    uint64_t cache_max_object_bytes = 8ull << 20;

    Config();
};

// Settings given on the command line, applied over the file in order. Each is
// ("section.key", "TOML value"); a value that is not valid TOML is taken as a string.
using Overrides = std::vector<std::pair<std::string, std::string>>;

// Every key the configuration file may hold, "section.key", sorted.
std::vector<std::string> known_keys();

// Loads `path` (empty: defaults only) and applies the overrides. Throws ConfigError.
Config load_config(const std::string& path, const Overrides& overrides);

// Every key `path` and `overrides` set, "section.key" -> its value as TOML text (an override
// replaces the file's); what SIGHUP compares to say which keys changed. Throws ConfigError
// when the file cannot be read or parsed.
std::map<std::string, std::string> key_values(const std::string& path, const Overrides& overrides);

// Keys a running gateway applies when SIGHUP finds them changed; every other changed key is
// named as needing a restart.
bool applies_live(const std::string& key);

}  // namespace vigil::config

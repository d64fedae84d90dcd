// Building the services from the configuration (gateway/wiring.hpp).
#include "gateway/wiring.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include <boost/asio/post.hpp>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "core/encoding.hpp"
#include "gateway/reloader.hpp"
#include "tls/contexts.hpp"

namespace vigil::gateway {

std::shared_ptr<session::TlsMaterial> load_tls_material(const Config& cfg, Counters& counters) {
    auto m = std::make_shared<session::TlsMaterial>();
    m->ca = std::make_shared<const tls::CaMaterial>(tls::load_ca_dir(cfg.ca_dir));
    m->minter = std::make_unique<tls::LeafMinter>(m->ca);
    auto* minter = m->minter.get();
    auto* c = &counters;
    m->certs = std::make_unique<tls::CertCache>(
        [minter, c](const std::string& host) {
            count(c->certs_minted);
            const auto started = std::chrono::steady_clock::now();
            auto leaf = minter->mint(host);
            c->latency.mint.observe(std::chrono::steady_clock::now() - started);
            return leaf;
        },
        tls::CertCache::Limits{cfg.cert_cache_entries, cfg.cert_cache_bytes});
    m->chain.reset(sk_X509_new_null());
    for (const auto& cert : m->ca->chain) sk_X509_push(m->chain.get(), tls::x509_ref(cert.get()).release());
    m->issuer_fingerprint = tls::fingerprint(m->ca->issuer.get(), EVP_sha256());
    return m;
}

std::unique_ptr<Gateway> build_gateway(const Config& cfg, std::string* rules_stamp_out, bool create_state) {
    auto gw = std::make_unique<Gateway>(cfg);
    net::post(gw->auth.pool, [] { pthread_setname_np(pthread_self(), "vigil-auth"); });
    upstream::Connector& up = gw->upstream;
    if (!cfg.hosts_file.empty()) up.hosts = HostsFile::load(cfg.hosts_file);
    gw->certs.material.store(load_tls_material(cfg, gw->counters));
    gw->certs.client_ctx = std::make_unique<net::ssl::context>(tls::make_client_facing_ctx(cfg.client_alpn).release());
    const tls::OriginTrust trust{cfg.extra_ca_file, cfg.system_store, cfg.revocation, cfg.max_chain_depth, cfg.strictness};
    up.origin_ctx = std::make_unique<net::ssl::context>(tls::make_origin_ctx(trust).release());
    tls::use_intermediate_pool(up.origin_ctx->native_handle(), &up.intermediates);
    if (cfg.aia_fetch || cfg.revocation == tls::Revocation::ocsp)
        up.fetcher = std::make_unique<upstream::Fetcher>(up, upstream::FetchLimits{cfg.fetch, 64 * 1024});
    up.parents.configure(cfg);
    if (cfg.cache)
        gw->cache = std::make_unique<cache::Store>(
            cache::Options{cfg.cache_dir, cfg.cache_max_bytes, cfg.cache_memory_bytes, cfg.cache_max_object_bytes},
            gw->counters);
    gw->policy.rules.store(load_rules(cfg, rules_stamp_out));
    if (!cfg.audit_path.empty() || !cfg.audit_jsonl.empty() || !cfg.audit_syslog.empty()) {
        audit::WriterOptions ao;
        ao.path = cfg.audit_path;
        ao.jsonl_path = cfg.audit_jsonl;
        ao.syslog = cfg.audit_syslog;
        ao.overflow_drop = cfg.audit_overflow_drop;
        ao.url_mode = cfg.audit_url_mode;
        ao.queue_limit = cfg.audit_queue_limit;
        ao.wal_limit = cfg.audit_wal_limit;
        ao.sync = cfg.audit_sync;
        gw->audit = std::make_unique<audit::Writer>(ao);
        gw->audit_sink.writer = gw->audit.get();
    }
    if (!cfg.audit_ship.empty()) {
        if (cfg.audit_path.empty()) throw ConfigError("audit.ship ships from the audit log: audit.path is needed");
        if (create_state) {
            audit::ShipOptions so;
            so.db_path = cfg.audit_path;
            so.target = cfg.audit_ship;
            so.gateway = cfg.audit_ship_name;
            if (so.gateway.empty()) {
                char host[256] = {};
                ::gethostname(host, sizeof host - 1);
                so.gateway = host;
            }
            gw->shipper = std::make_unique<audit::Shipper>(so);
        }
    }
    gw->policy.warn_key = load_warn_key(cfg, create_state);
    gw->policy.warn_duration = cfg.warn_duration;
    return gw;
}

std::string warn_key_path(const Config& cfg) {
    if (!cfg.warn_key_file.empty()) return cfg.warn_key_file;
    std::string dir = cfg.ca_dir;
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    const size_t slash = dir.rfind('/');
    return (slash == std::string::npos ? std::string(".") : slash == 0 ? std::string("/") : dir.substr(0, slash)) +
           "/warn.key";
}

std::string load_warn_key(const Config& cfg, bool create) {
    const std::string path = warn_key_path(cfg);
    std::ifstream in(path);
    if (!in) {
        if (errno != ENOENT) throw ConfigError("cannot read the warn key " + path + ": " + std::strerror(errno));
        unsigned char key[32];
        RAND_bytes(key, sizeof key);
        if (!create) return std::string(reinterpret_cast<char*>(key), sizeof key);  // --check-config writes nothing
        // Created once, readable by its owner only, and published whole: written to a temporary
        // file, then linked to its name, which fails if another gateway starting at the same
        // moment published its key first (then that one is read).
        const std::string tmp = path + ".new." + std::to_string(::getpid());
        const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0)
            throw ConfigError("cannot create the warn key " + path + ": " + std::strerror(errno) +
                              " (inspect.warn_key_file)");
        const std::string text = core::hex(key, sizeof key) + "\n";
        const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
        ::close(fd);
        const int linked = ok ? ::link(tmp.c_str(), path.c_str()) : -1;
        const int link_errno = errno;
        ::unlink(tmp.c_str());
        if (!ok) throw ConfigError("cannot write the warn key " + path);
        if (linked != 0 && link_errno == EEXIST) return load_warn_key(cfg, false);
        if (linked != 0)
            throw ConfigError("cannot create the warn key " + path + ": " + std::strerror(link_errno) +
                              " (inspect.warn_key_file)");
        log_info("created the warn key " + path + " (Continue links and grants are signed with it)");
        return std::string(reinterpret_cast<char*>(key), sizeof key);
    }
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 077))
        throw ConfigError("the warn key " + path + " is readable or writable by others; chmod 600 it");
    std::string text;
    std::getline(in, text);
    auto bytes = core::unhex(text);
    if (!bytes || bytes->size() < 16)
        throw ConfigError("the warn key " + path + " is not a hex key of at least 16 bytes");
    return std::string(bytes->begin(), bytes->end());
}

void audit_event(audit::Writer* audit, const std::string& what, const std::string& detail) {
    if (!audit) return;
    audit::Record r;
    r.kind = "system";
    r.ts_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
                  .count();
    r.action = what;
    r.reason = detail;
    audit->submit(std::move(r));
}

}  // namespace vigil::gateway

// Building the services from the configuration (gateway/wiring.hpp).
#include "gateway/wiring.hpp"

#include <pthread.h>

#include <boost/asio/post.hpp>
#include <openssl/evp.h>
#include <openssl/rand.h>

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
            return minter->mint(host);
        },
        tls::CertCache::Limits{cfg.cert_cache_entries, cfg.cert_cache_bytes});
    m->chain.reset(sk_X509_new_null());
    for (const auto& cert : m->ca->chain) sk_X509_push(m->chain.get(), tls::x509_ref(cert.get()).release());
    m->issuer_fingerprint = tls::fingerprint(m->ca->issuer.get(), EVP_sha256());
    return m;
}

std::unique_ptr<Gateway> build_gateway(const Config& cfg, std::string* rules_stamp_out) {
    auto gw = std::make_unique<Gateway>(cfg);
    net::post(gw->auth.pool, [] { pthread_setname_np(pthread_self(), "vigil-auth"); });
    upstream::Connector& up = gw->upstream;
    if (!cfg.hosts_file.empty()) up.hosts = HostsFile::load(cfg.hosts_file);
    gw->certs.material.store(load_tls_material(cfg, gw->counters));
    gw->certs.client_ctx = std::make_unique<net::ssl::context>(tls::make_client_facing_ctx().release());
    up.origin_ctx = std::make_unique<net::ssl::context>(tls::make_origin_ctx(cfg.extra_ca_file, cfg.revocation).release());
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
    unsigned char key[32];
    RAND_bytes(key, sizeof key);
    gw->policy.warn_key.assign(reinterpret_cast<char*>(key), sizeof key);
    gw->policy.warn_duration = cfg.warn_duration;
    return gw;
}

void audit_event(Gateway& gw, const std::string& what, const std::string& detail) {
    if (!gw.audit) return;
    audit::Record r;
    r.kind = "system";
    r.ts_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
                  .count();
    r.action = what;
    r.reason = detail;
    gw.audit->submit(std::move(r));
}

}  // namespace vigil::gateway

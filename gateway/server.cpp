// Workers (one io_context and one SO_REUSEPORT acceptor per thread), signals and shutdown.
#include "gateway/server.hpp"

#include <malloc.h>
#include <sched.h>

#include <charconv>
#include <csignal>
#include <openssl/evp.h>
#include <ctime>
#include <fstream>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "gateway/admin.hpp"
#include "gateway/framing.hpp"
#include "gateway/log.hpp"
#include "gateway/state.hpp"
#include "gateway/upstream.hpp"
#include "rules/db.hpp"
#include "tls/contexts.hpp"

#include <condition_variable>
#include <openssl/rand.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/stat.h>

namespace vigil::gateway {
namespace {

using reuse_port = net::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

tcp::endpoint parse_listen(const std::string& listen) {
    // Port 0 is allowed here (the kernel picks one), unlike in request authorities.
    auto colon = listen.rfind(':');
    std::string host = listen.substr(0, colon == std::string::npos ? 0 : colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    error_code ec;
    auto addr = net::ip::make_address(host, ec);
    unsigned long port = 70000;
    try {
        size_t used = 0;
        port = std::stoul(listen.substr(colon + 1), &used);
        if (used != listen.size() - colon - 1) port = 70000;
    } catch (const std::exception&) {
    }
    if (colon == std::string::npos || ec || port > 65535)
        throw ConfigError("proxy.listen: expected ADDRESS:PORT with an IP address, got \"" + listen + "\"");
    return {addr, static_cast<unsigned short>(port)};
}

// System events (start, stop, ruleset swaps) go to the audit log like transactions.
using audit::epoch_ms;
using audit::iso_time;

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

inspect::InspectOptions inspect_options(const Config& cfg) {
    inspect::InspectOptions o;
    o.re2_max_mem = cfg.re2_max_mem;
    o.scan_limit = cfg.scan_limit;
    o.oversize_block = cfg.oversize_block;
    o.error_block = cfg.error_block;
    return o;
}

// SHA-256 of a file's bytes ("" when it cannot be read): a change that keeps the size and the
// modification time (a block rewritten in place, a copy with its times preserved) still shows.
std::string file_digest(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return "";
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
    std::vector<char> chunk(1 << 16);
    while (in.read(chunk.data(), static_cast<std::streamsize>(chunk.size())) || in.gcount() > 0)
        EVP_DigestUpdate(ctx.get(), chunk.data(), static_cast<size_t>(in.gcount()));
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_DigestFinal_ex(ctx.get(), md, &len);
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < len; ++i) out += {hex[md[i] >> 4], hex[md[i] & 15]};
    return out;
}

// The rule database's bytes and those of its WAL (rule databases are a few MiB: hashing them
// every poll costs milliseconds, on the reloader's thread).
std::string rules_bytes(const Config& cfg) {
    return file_digest(cfg.rules_path) + ":" + file_digest(cfg.rules_path + "-wal");
}

// Identifies a rule database state: its version, the file itself (a replaced file counts) and
// its bytes (rules_bytes).
std::string rules_stamp(const Config& cfg, int64_t version, const std::string& bytes) {
    struct stat st {};
    ::stat(cfg.rules_path.c_str(), &st);
    return std::to_string(version) + ":" + std::to_string(st.st_ino) + ":" + std::to_string(st.st_dev) + ":" + bytes;
}

std::shared_ptr<const inspect::RuleSet> load_rules(const Config& cfg, std::string* stamp) {
    if (cfg.rules_path.empty()) return inspect::RuleSet::empty(inspect_options(cfg));
    auto db = rules::RuleDb::open(cfg.rules_path, rules::RuleDb::Mode::read_only);
    auto data = db->load();
    if (stamp) *stamp = rules_stamp(cfg, data.version, rules_bytes(cfg));
    return inspect::RuleSet::compile(data, inspect_options(cfg));
}

std::shared_ptr<TlsMaterial> load_tls_material(const Config& cfg, Counters& counters);

// Watches the rule database off the workers: on a new version (poll or SIGHUP) it compiles a
// new snapshot and swaps it in; a failure keeps the old ruleset serving.
class RuleReloader {
public:
    RuleReloader(Gateway& gw, std::string stamp) : gw_(gw), stamp_(std::move(stamp)) {
        thread_ = std::thread([this] {
            pthread_setname_np(pthread_self(), "vigil-rules");
            run();
        });
    }
    ~RuleReloader() {
        {
            std::lock_guard lock(mu_);
            stop_ = true;
        }
        cv_.notify_all();
        if (thread_.joinable()) thread_.join();
    }
    void poke() {
        {
            std::lock_guard lock(mu_);
            poked_ = true;
        }
        cv_.notify_all();
    }

private:
    void run() {
        std::unique_lock lock(mu_);
        for (;;) {
            cv_.wait_for(lock, gw_.cfg.reload_interval, [this] { return stop_ || poked_; });
            if (stop_) return;
            bool forced = poked_;
            poked_ = false;
            lock.unlock();
            if (!gw_.cfg.rules_path.empty()) check(forced);
            if (forced) check_ca();
            lock.lock();
        }
    }
    void check(bool forced) {
        // The bytes first: a corrupted file may not even open, and must still count as a change.
        const std::string bytes = rules_bytes(gw_.cfg);
        if (bytes == bytes_ && !forced) return;
        try {
            auto db = rules::RuleDb::open(gw_.cfg.rules_path, rules::RuleDb::Mode::read_only);
            std::string stamp = rules_stamp(gw_.cfg, db->version(), bytes);
            if (stamp == stamp_ && !forced) {
                bytes_ = bytes;  // back to what is in force (a broken file put right again)
                gw_.rules_health.failing = false;
                return;
            }
            auto data = db->load();
            auto fresh = inspect::RuleSet::compile(data, inspect_options(gw_.cfg));
            int64_t old = gw_.rules.load()->version();
            gw_.rules.store(fresh);
            stamp_ = rules_stamp(gw_.cfg, data.version, bytes);
            bytes_ = bytes;
            gw_.rules_health.failing = false;
            gw_.rules_health.last_success_ms = epoch_ms();
            bump(gw_.counters.ruleset_reloads);
            audit_event(gw_, "ruleset", "ruleset version " + std::to_string(old) + " -> " + std::to_string(fresh->version()));
            log_info("ruleset " + std::to_string(old) + " -> " + std::to_string(fresh->version()) + " (" +
                     std::to_string(fresh->signature_count()) + " signatures, " + std::to_string(fresh->host_count()) +
                     " host entries)");
        } catch (const std::exception& e) {
            // Said once per state of the file, not at every poll; SIGHUP says it again.
            bytes_ = bytes;
            bump(gw_.counters.ruleset_reload_failed);
            gw_.rules_health.failing = true;
            {
                std::lock_guard lock(gw_.rules_health.mu);
                gw_.rules_health.error = e.what();
            }
            log_error(std::string("rule reload failed, the previous ruleset stays in force: ") + e.what());
            audit_event(gw_, "ruleset-failed", e.what());
        }
    }

    // SIGHUP: a rotated issuing CA (vigil-ca rotate / install-issuing) is loaded and swapped in;
    // connections already bumped keep the certificate they have.
    void check_ca() {
        try {
            auto current = gw_.tls.load();
            auto fresh = load_tls_material(gw_.cfg, gw_.counters);
            if (fresh->issuer_fingerprint == current->issuer_fingerprint) return;
            gw_.tls.store(fresh);
            log_info("issuing CA replaced: now " + tls::subject_text(fresh->ca->issuer.get()) + " (SHA-256 " +
                     fresh->issuer_fingerprint + ")");
            audit_event(gw_, "ca", "issuing CA replaced: " + current->issuer_fingerprint + " -> " + fresh->issuer_fingerprint);
        } catch (const std::exception& e) {
            log_error(std::string("CA reload failed, the current CA stays in use: ") + e.what());
            audit_event(gw_, "ca-failed", e.what());
        }
    }

    Gateway& gw_;
    std::string stamp_;
    std::string bytes_;  // the files' digests at the last look
    std::thread thread_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false, poked_ = false;
};

std::shared_ptr<TlsMaterial> load_tls_material(const Config& cfg, Counters& counters) {
    auto m = std::make_shared<TlsMaterial>();
    m->ca = std::make_shared<const tls::CaMaterial>(tls::load_ca_dir(cfg.ca_dir));
    m->minter = std::make_unique<tls::LeafMinter>(m->ca);
    auto* minter = m->minter.get();
    auto* c = &counters;
    m->certs = std::make_unique<tls::CertCache>(
        [minter, c](const std::string& host) {
            bump(c->certs_minted);
            return minter->mint(host);
        },
        tls::CertCache::Limits{cfg.cert_cache_entries, cfg.cert_cache_bytes});
    m->chain.reset(sk_X509_new_null());
    for (const auto& cert : m->ca->chain) sk_X509_push(m->chain.get(), tls::x509_ref(cert.get()).release());
    m->issuer_fingerprint = tls::fingerprint(m->ca->issuer.get(), EVP_sha256());
    return m;
}

// The CPUs this process may use, for proxy.threads = 0: its affinity mask (taskset, a
// container's cpuset), further capped by a cgroup v2 CPU quota on its cgroup or an ancestor
// (cpu.max "200000 100000" = 2, rounded up). The machine's CPU count alone would start a
// worker per host CPU in a container given two of them, and the workers would only take turns.
unsigned usable_cpus() {
    unsigned n = std::max(1u, std::thread::hardware_concurrency());
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) n = static_cast<unsigned>(CPU_COUNT(&set));
    std::ifstream self("/proc/self/cgroup");
    std::string line, dir;
    while (std::getline(self, line))
        if (line.rfind("0::", 0) == 0) dir = line.substr(3);  // cgroup v2: "0::/system.slice/vigil.service"
    // The quota may sit on the process's cgroup or on any parent, up to the root.
    for (;;) {
        std::ifstream max_file("/sys/fs/cgroup" + dir + "/cpu.max");
        std::string quota;
        long long period = 0, q = 0;
        if (max_file >> quota >> period && quota != "max" && period > 0 &&
            std::from_chars(quota.data(), quota.data() + quota.size(), q).ec == std::errc() && q > 0)
            n = std::min<unsigned>(n, static_cast<unsigned>(std::max<long long>(1, (q + period - 1) / period)));
        if (dir.empty() || dir == "/") break;
        const size_t slash = dir.rfind('/');
        dir.resize(slash == std::string::npos ? 0 : slash);
    }
    return n;
}

std::unique_ptr<Gateway> build_gateway(const Config& cfg, std::string* rules_stamp_out = nullptr) {
    auto gw = std::make_unique<Gateway>();
    net::post(gw->auth_pool, [] { pthread_setname_np(pthread_self(), "vigil-auth"); });
    gw->cfg = cfg;
    if (!cfg.hosts_file.empty()) gw->hosts = HostsFile::load(cfg.hosts_file);
    gw->tls.store(load_tls_material(cfg, gw->counters));
    gw->client_ctx = std::make_unique<net::ssl::context>(tls::make_client_facing_ctx().release());
    const auto revocation = cfg.revocation == "off"      ? tls::Revocation::off
                            : cfg.revocation == "ocsp" ? tls::Revocation::ocsp
                                                       : tls::Revocation::staple;
    gw->origin_ctx = std::make_unique<net::ssl::context>(tls::make_origin_ctx(cfg.extra_ca_file, revocation).release());
    tls::use_intermediate_pool(gw->origin_ctx->native_handle(), &gw->intermediates);
    if (cfg.aia_fetch || cfg.revocation == "ocsp")
        gw->fetcher = std::make_unique<Fetcher>(*gw, FetchLimits{cfg.fetch, 64 * 1024});
    gw->parents.configure(cfg);
    if (cfg.cache)
        gw->cache = std::make_unique<cache::Store>(
            cache::Options{cfg.cache_dir, cfg.cache_max_bytes, cfg.cache_memory_bytes, cfg.cache_max_object_bytes},
            gw->counters);
    gw->rules.store(load_rules(cfg, rules_stamp_out));
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
    }
    unsigned char key[32];
    RAND_bytes(key, sizeof key);
    gw->warn_key.assign(reinterpret_cast<char*>(key), sizeof key);
    return gw;
}

// Parent proxies are checked every upstream.health_interval: a TCP connection each; a parent
// that accepts is up, one that does not is down until it accepts again. A failed connection
// on behalf of a client marks a parent down at once (see connect_tcp).
net::awaitable<void> parent_health_loop(Gateway& gw) {
    net::steady_timer timer(co_await net::this_coro::executor);
    while (!gw.stopping) {
        // Side by side: a parent that swallows connection attempts (timeouts.connect) does not
        // delay the others' checks.
        for (const auto& p : gw.parents.all()) net::co_spawn(timer.get_executor(), check_parent(gw, *p), net::detached);
        timer.expires_after(gw.cfg.parent_health_interval);
        co_await timer.async_wait(use_nothrow);
    }
}

net::awaitable<void> accept_loop(Gateway& gw, Worker& w) {
    std::chrono::milliseconds backoff(50);
    std::chrono::steady_clock::time_point last_said{};
    uint64_t failures = 0;
    for (;;) {
        auto [ec, socket] = co_await w.acceptor->async_accept(use_nothrow);
        if (gw.stopping || ec == net::error::operation_aborted) co_return;
        if (ec) {
            // Out of descriptors and the like: count it, say so at most every 10 s (with how
            // many since), and back off (50 ms, doubling to 1 s) instead of spinning.
            bump(gw.counters.accept_failed);
            ++failures;
            const auto now = std::chrono::steady_clock::now();
            if (now - last_said >= std::chrono::seconds(10)) {
                log_error("accept failed: " + ec.message() + " (" + std::to_string(failures) +
                          " times since the last report; counter accept_failed)");
                last_said = now;
                failures = 0;
            }
            net::steady_timer t(w.ioc, backoff);
            co_await t.async_wait(use_nothrow);
            backoff = std::min<std::chrono::milliseconds>(backoff * 2, std::chrono::seconds(1));
            continue;
        }
        backoff = std::chrono::milliseconds(50);
        net::co_spawn(w.ioc, client_session(std::move(socket), gw, w), [](std::exception_ptr e) {
            if (!e) return;
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                log_error(std::string("session ended by an unexpected error: ") + ex.what());
            }
        });
    }
}

// Idle pooled origin connections are closed after their idle time even when no one gives the
// pool another (the only other moment it looks): a quiet gateway holds no origin sockets.
// The first worker also gives memory back: glibc keeps what closed or parked connections freed,
// scattered between live ones (16 -> 233 MB over three rounds of 2,000 idle connections).
// malloc_trim returns the free pages when the open connections fell to under half of their
// peak (by at least 256; at most every 2 s), or 256 connections were parked (at most every
// 10 s): it holds each malloc arena's lock while it walks it, milliseconds on a large heap.
net::awaitable<void> pool_sweep_loop(Gateway& gw, bool trims) {
    net::steady_timer timer(co_await net::this_coro::executor);
    int peak = 0;
    uint64_t parked_at_trim = 0;
    auto last_trim = std::chrono::steady_clock::now();
    while (!gw.stopping) {
        timer.expires_after(std::chrono::seconds(1));
        co_await timer.async_wait(use_nothrow);
        if (UpstreamPool* pool = UpstreamPool::current()) pool->prune();
        if (!trims) continue;
        const int open = gw.active_sessions.load();
        const uint64_t parked = gw.counters.parked.load();
        peak = std::max(peak, open);
        const bool fell = peak - open >= 256 && open < peak / 2;
        const auto now = std::chrono::steady_clock::now();
        const auto since = now - last_trim;
        if ((fell && since >= std::chrono::seconds(2)) ||
            (parked - parked_at_trim >= 256 && since >= std::chrono::seconds(10))) {
            ::malloc_trim(0);
            peak = open;
            parked_at_trim = parked;
            last_trim = now;
        }
    }
}

void open_acceptor(Worker& w, tcp::endpoint ep) {
    w.acceptor = std::make_unique<tcp::acceptor>(w.ioc);
    w.acceptor->open(ep.protocol());
    w.acceptor->set_option(tcp::acceptor::reuse_address(true));
    w.acceptor->set_option(reuse_port(true));
    error_code ec;
    w.acceptor->bind(ep, ec);
    if (ec) throw std::runtime_error("cannot listen on " + ep.address().to_string() + ":" +
                                     std::to_string(ep.port()) + ": " + ec.message());
    w.acceptor->listen(net::socket_base::max_listen_connections);
}

// SO_REUSEPORT lets any process of the same user share a port, and the kernel then splits the
// connections between them: a second gateway (perhaps with another configuration) started on
// an address one already serves would silently take part of its traffic. So before the
// workers bind with it, one plain bind (SO_REUSEADDR only, which TIME_WAIT leftovers do not
// stop) proves no one else listens there. Port 0 picks a free port and cannot collide.
void ensure_address_free(const tcp::endpoint& ep) {
    if (ep.port() == 0) return;
    net::io_context probe_ctx;
    tcp::acceptor probe(probe_ctx);
    error_code ec;
    probe.open(ep.protocol(), ec);
    if (!ec) probe.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) probe.bind(ep, ec);
    if (ec == net::error::address_in_use)
        throw std::runtime_error("cannot listen on " + ep.address().to_string() + ":" + std::to_string(ep.port()) +
                                 ": another process (another vigil?) already listens there; one gateway per "
                                 "address (stop the other, or choose another proxy.listen)");
}

void write_ready_file(const std::string& path, const tcp::endpoint& ep, unsigned short admin_port) {
    std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp);
        std::string addr = ep.address().is_v6() ? "[" + ep.address().to_string() + "]" : ep.address().to_string();
        out << "{\"listen\": \"" << addr << ":" << ep.port() << "\", \"admin_port\": " << admin_port
            << ", \"pid\": " << ::getpid() << "}\n";
    }
    std::rename(tmp.c_str(), path.c_str());
}

void close_idle_sessions(Gateway& gw, Worker& w) {
    error_code ec;
    if (w.acceptor) w.acceptor->close(ec);
    for (SessionTrack* s : w.sessions) {
        if (!s->idle) continue;
        s->stream->socket().close(ec);
        bump(gw.counters.shutdown_closed_idle);
    }
}

}  // namespace

void check_startup(const Config& cfg) {
    parse_listen(cfg.listen);
    Config dry = cfg;
    dry.audit_path.clear();  // --check-config must not create the audit log
    dry.audit_jsonl.clear();
    dry.audit_syslog.clear();
    build_gateway(dry);
}

int run_gateway(const Config& cfg, const RunOptions& opts) {
    std::signal(SIGPIPE, SIG_IGN);
    // Each connection needs one or two descriptors: raise the soft limit to what is allowed.
    rlimit nofile{};
    if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &nofile);
    }
    set_log_level(cfg.log_level);
    std::string stamp;
    std::unique_ptr<Gateway> gw = build_gateway(cfg, &stamp);
    auto rules = gw->rules.load();
    if (cfg.rules_path.empty())
        log_warn("no rule database configured (rules.path): every request is allowed and nothing is scanned");
    else
        log_info("ruleset version " + std::to_string(rules->version()) + " from " + cfg.rules_path + ": " +
                 std::to_string(rules->signature_count()) + " signatures, " + std::to_string(rules->host_count()) +
                 " host entries");
    if (!gw->audit) log_warn("no audit log configured (audit.path): decisions are not recorded");
    if (gw->audit && gw->audit->previous_run().unclean) {
        // Said first, so the gap is on record before anything else: the previous process was
        // killed or crashed, and the records it still held in memory were lost.
        const auto& prev = gw->audit->previous_run();
        const std::string gap = "the previous run (started " + iso_time(prev.started_ms) + ") did not stop cleanly; " +
                                "records may be missing between " + iso_time(prev.last_ms) + " and " +
                                iso_time(epoch_ms()) + " (its last record and this start)";
        log_warn("audit: " + gap);
        audit_event(*gw, "unclean-stop", gap);
    }
    audit_event(*gw, "start", "vigil started; CA " + tls::subject_text(gw->tls.load()->ca->issuer.get()) +
                                   " (SHA-256 " + gw->tls.load()->issuer_fingerprint + "); ruleset version " +
                                   std::to_string(rules->version()));
    gw->rules_health.last_success_ms = epoch_ms();
    RuleReloader reloader(*gw, stamp);
    tcp::endpoint ep = parse_listen(cfg.listen);
    const unsigned n = cfg.threads ? cfg.threads : usable_cpus();
    // Signals are caught from here on: a SIGTERM that arrives while starting (before anyone
    // could have seen the ready file) still means a graceful stop, not death by signal.
    net::io_context main_ioc;
    net::signal_set signals(main_ioc, SIGINT, SIGTERM);
    net::signal_set hup(main_ioc, SIGHUP);

    std::vector<std::unique_ptr<Worker>> workers;
    ensure_address_free(ep);
    for (unsigned i = 0; i < n; ++i) {
        workers.push_back(std::make_unique<Worker>());
        open_acceptor(*workers.back(), ep);
        if (i == 0) ep = workers[0]->acceptor->local_endpoint();  // port 0: the others share the chosen port
    }
    gw->listen_endpoints = {ep};
    // The admin listener lives on the first worker; the proxy refuses requests for it (loop).
    std::unique_ptr<tcp::acceptor> admin;
    if (!cfg.admin_listen.empty()) {
        tcp::endpoint aep = parse_listen(cfg.admin_listen);
        admin = std::make_unique<tcp::acceptor>(workers[0]->ioc);
        admin->open(aep.protocol());
        admin->set_option(tcp::acceptor::reuse_address(true));
        error_code aec;
        admin->bind(aep, aec);
        if (aec) throw std::runtime_error("cannot listen on admin.listen " + cfg.admin_listen + ": " + aec.message());
        admin->listen();
        aep = admin->local_endpoint();
        if (aep.port() == ep.port() && aep.address() == ep.address())
            throw ConfigError("admin.listen must differ from proxy.listen");
        gw->listen_endpoints.push_back(aep);
        net::co_spawn(workers[0]->ioc, admin_accept_loop(*gw, *admin), net::detached);
    }
    for (auto& w : workers) {
        net::co_spawn(w->ioc, accept_loop(*gw, *w), net::detached);
        net::co_spawn(w->ioc, pool_sweep_loop(*gw, w == workers.front()), net::detached);
    }
    if (!gw->parents.empty()) net::co_spawn(workers[0]->ioc, parent_health_loop(*gw), net::detached);

    std::vector<std::thread> threads;
    std::vector<net::executor_work_guard<net::io_context::executor_type>> guards;
    for (auto& w : workers) {
        guards.push_back(net::make_work_guard(w->ioc));
        threads.emplace_back([&w, i = threads.size()] {
            // Named for top -H, perf and gdb: vigil-w0, vigil-w1, ... (15 characters at most).
            pthread_setname_np(pthread_self(), ("vigil-w" + std::to_string(i)).substr(0, 15).c_str());
            UpstreamPool pool;  // closed when run() returns, while the io_context still exists
            UpstreamPool::current() = &pool;
            w->ioc.run();
            UpstreamPool::current() = nullptr;
        });
    }
    std::string shown = ep.address().is_v6() ? "[" + ep.address().to_string() + "]" : ep.address().to_string();
    log_info("vigil listening on " + shown + ":" + std::to_string(ep.port()) + " with " + std::to_string(n) +
             " worker threads; CA " + tls::subject_text(gw->tls.load()->ca->issuer.get()));
    if (admin) {
        auto aep = gw->listen_endpoints.back();
        log_info("admin listener on " + aep.address().to_string() + ":" + std::to_string(aep.port()) +
                 " (/healthz /readyz /metrics)");
    }
    if (!opts.ready_file.empty()) write_ready_file(opts.ready_file, ep, admin ? admin->local_endpoint().port() : 0);

    std::function<void()> on_hup = [&] {
        hup.async_wait([&](error_code ec, int) {
            if (ec) return;
            log_info("received SIGHUP: checking the rule database and the CA now");
            reloader.poke();
            on_hup();
        });
    };
    on_hup();
    net::steady_timer drain(main_ioc);
    std::chrono::steady_clock::time_point deadline;
    std::function<void()> poll = [&] {
        if (gw->active_sessions == 0 || std::chrono::steady_clock::now() >= deadline) {
            main_ioc.stop();
            return;
        }
        // Sessions that finished a transaction since the last look may now be idle.
        for (auto& w : workers) net::post(w->ioc, [&gw, wp = w.get()] { close_idle_sessions(*gw, *wp); });
        drain.expires_after(std::chrono::milliseconds(50));
        drain.async_wait([&](error_code) { poll(); });
    };
    signals.async_wait([&](error_code ec, int sig) {
        if (ec) return;
        log_info(std::string("received ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT") + ": finishing " +
                 std::to_string(gw->active_sessions.load()) + " open connections (grace " +
                 std::to_string(cfg.shutdown_grace.count()) + " s)");
        gw->stopping = true;
        hup.cancel();
        // The admin listener stays up until the process exits: /readyz answers 503 meanwhile,
        // so a balancer sees the drain instead of a refused connection.
        deadline = std::chrono::steady_clock::now() + cfg.shutdown_grace;
        signals.async_wait([&](error_code e2, int) {
            if (!e2) deadline = std::chrono::steady_clock::now();  // a second signal: stop now
        });
        poll();
    });
    main_ioc.run();
    // From here the shutdown only finishes: a repeated SIGTERM/SIGINT (a supervisor asking
    // twice) must not kill it half-way through writing the audit log. The signal_set would
    // restore the default action when destroyed, before the gateway is, so it is cleared first.
    error_code clear_ec;
    signals.clear(clear_ec);
    std::signal(SIGINT, SIG_IGN);
    std::signal(SIGTERM, SIG_IGN);

    int left = gw->active_sessions.load();
    for (auto& w : workers) w->ioc.stop();
    for (auto& t : threads) t.join();
    guards.clear();  // they point into the workers' io_contexts
    // Password checks and disk reads still running finish while the io_contexts they answer to
    // still exist (stopped: their answers are dropped with them).
    gw->auth_pool.join();
    gw->disk_pool.join();
    admin.reset();
    // Destroying the workers ends sessions still open past the grace period; their records are
    // submitted as they go, so the audit log is closed only after that.
    workers.clear();
    if (gw->audit) {
        audit_event(*gw, "stop", "vigil stopped; " + std::to_string(left) + " connections cut at the end of the grace period");
        gw->audit->close();
        gw->counters.audit_written = gw->audit->written();
        gw->counters.audit_dropped = gw->audit->dropped();
        gw->counters.audit_failures = gw->audit->failures();
    }
    if (left) log_warn(std::to_string(left) + " connections were still open at the end of the grace period");
    if (gw->cache) gw->cache->flush();  // responses stored in the last moments reach the disk
    std::string stats = gw->counters.to_json();
    log_info("counters " + stats);
    if (!cfg.stats_file.empty()) {
        std::ofstream out(cfg.stats_file);
        out << stats << "\n";
    }
    log_info("vigil stopped");
    return 0;
}

}  // namespace vigil::gateway

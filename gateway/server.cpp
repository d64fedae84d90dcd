// Workers (one io_context and one SO_REUSEPORT acceptor per thread), signals and shutdown.
#include "gateway/server.hpp"

#include <malloc.h>
#include <sched.h>

#include <charconv>
#include <csignal>
#include <ctime>
#include <fstream>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <pthread.h>
#include <sys/resource.h>

#include "gateway/listen.hpp"
#include "gateway/bundle_puller.hpp"
#include "gateway/reloader.hpp"
#include "gateway/service.hpp"
#include "gateway/wiring.hpp"
#include "upstream/pool.hpp"
#include "tls/ca.hpp"

namespace vigil::gateway {
namespace {

using audit::epoch_ms;
using audit::iso_time;
using session::Services;
using session::SessionTrack;
using session::Worker;
using upstream::UpstreamPool;

// Parent proxies are checked every upstream.health_interval: a TCP connection each; a parent
// that accepts is up, one that does not is down until it accepts again. A failed connection
// on behalf of a client marks a parent down at once (see connect_tcp).
net::awaitable<void> parent_health_loop(upstream::Connector& up, const std::atomic<bool>& stopping) {
    net::steady_timer timer(co_await net::this_coro::executor);
    while (!stopping) {
        // Side by side: a parent that swallows connection attempts (timeouts.connect) does not
        // delay the others' checks.
        for (const auto& p : up.parents.all()) net::co_spawn(timer.get_executor(), check_parent(up, *p), net::detached);
        timer.expires_after(up.cfg.parent_health_interval);
        co_await timer.async_wait(use_nothrow);
    }
}

net::awaitable<void> accept_loop(Services& sv, Worker& w) {
    std::chrono::milliseconds backoff(50);
    std::chrono::steady_clock::time_point last_said{};
    uint64_t failures = 0;
    for (;;) {
        auto [ec, socket] = co_await w.acceptor->async_accept(use_nothrow);
        if (sv.life.stopping || ec == net::error::operation_aborted) co_return;
        if (ec) {
            // Out of descriptors and the like: count it, say so at most every 10 s (with how
            // many since), and back off (50 ms, doubling to 1 s) instead of spinning.
            count(sv.counters.accept_failed);
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
        net::co_spawn(w.ioc, session::client_session(std::move(socket), sv, w), [](std::exception_ptr e) {
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
net::awaitable<void> pool_sweep_loop(Services& sv, bool trims) {
    net::steady_timer timer(co_await net::this_coro::executor);
    int peak = 0;
    uint64_t parked_at_trim = 0;
    auto last_trim = std::chrono::steady_clock::now();
    while (!sv.life.stopping) {
        timer.expires_after(std::chrono::seconds(1));
        co_await timer.async_wait(use_nothrow);
        if (UpstreamPool* pool = UpstreamPool::current()) pool->prune();
        if (!trims) continue;
        const int open = sv.life.active_sessions.load();
        const uint64_t parked = sv.counters.parked.load();
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

void close_idle_sessions(Counters& counters, Worker& w) {
    error_code ec;
    if (w.acceptor) w.acceptor->close(ec);
    for (SessionTrack* s : w.sessions) {
        if (!s->idle) continue;
        s->stream->socket().close(ec);
        count(counters.shutdown_closed_idle);
    }
}

void raise_descriptor_limit() {
    // Each connection needs one or two descriptors: raise the soft limit to what is allowed.
    rlimit nofile{};
    if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &nofile);
    }
}

// What starts: the ruleset, the missing audit log, a previous run that did not stop cleanly.
void announce_start(const ReloadTargets& t) {
    const Config& cfg = t.cfg;
    auto rules = t.rules.load();
    if (cfg.rules_path.empty())
        log_warn("no rule database configured (rules.path): every request is allowed and nothing is scanned");
    else
        log_info("ruleset version " + std::to_string(rules->version()) + " from " + cfg.rules_path + ": " +
                 std::to_string(rules->signature_count()) + " signatures, " + std::to_string(rules->host_count()) +
                 " host entries");
    if (!t.audit) log_warn("no audit log configured (audit.path): decisions are not recorded");
    if (t.audit && t.audit->previous_run().unclean) {
        // Said first, so the gap is on record before anything else: the previous process was
        // killed or crashed, and the records it still held in memory were lost.
        const auto& prev = t.audit->previous_run();
        const std::string gap = "the previous run (started " + iso_time(prev.started_ms) + ") did not stop cleanly; " +
                                "records may be missing between " + iso_time(prev.last_ms) + " and " +
                                iso_time(epoch_ms()) + " (its last record and this start)";
        log_warn("audit: " + gap);
        audit_event(t.audit, "unclean-stop", gap);
    }
    auto material = t.material.load();
    audit_event(t.audit, "start", "vigil started; CA " + tls::subject_text(material->ca->issuer.get()) + " (SHA-256 " +
                                 material->issuer_fingerprint + "); ruleset version " + std::to_string(rules->version()));
    t.health.last_success_ms = epoch_ms();
}

std::unique_ptr<tcp::acceptor> open_admin(const Config& cfg, net::io_context& ioc, const tcp::endpoint& proxy) {
    if (cfg.admin_listen.empty()) return nullptr;
    tcp::endpoint aep = parse_listen(cfg.admin_listen);
    auto admin = std::make_unique<tcp::acceptor>(ioc);
    admin->open(aep.protocol());
    admin->set_option(tcp::acceptor::reuse_address(true));
    error_code aec;
    admin->bind(aep, aec);
    if (aec) throw std::runtime_error("cannot listen on admin.listen " + cfg.admin_listen + ": " + aec.message());
    admin->listen();
    aep = admin->local_endpoint();
    if (aep.port() == proxy.port() && aep.address() == proxy.address())
        throw ConfigError("admin.listen must differ from proxy.listen");
    return admin;
}

void run_worker(Worker* w, size_t i) {
    // Named for top -H, perf and gdb: vigil-w0, vigil-w1, ... (15 characters at most).
    pthread_setname_np(pthread_self(), ("vigil-w" + std::to_string(i)).substr(0, 15).c_str());
    UpstreamPool pool;  // closed when run() returns, while the io_context still exists
    UpstreamPool::current() = &pool;
    w->ioc.run();
    UpstreamPool::current() = nullptr;
}

// After the workers are gone: the stop record, the audit log closed, the cache flushed, the
// counters said (and written to proxy.stats_file).
void finish(audit::Writer* audit, Counters& counters, cache::Store* cache, const Config& cfg, int left) {
    if (audit) {
        audit_event(audit, "stop", "vigil stopped; " + std::to_string(left) + " connections cut at the end of the grace period");
        audit->close();
        counters.audit_written = audit->written();
        counters.audit_dropped = audit->dropped();
        counters.audit_failures = audit->failures();
    }
    if (left) log_warn(std::to_string(left) + " connections were still open at the end of the grace period");
    if (cache) cache->flush();  // responses stored in the last moments reach the disk
    std::string stats = counters.to_json();
    log_info("counters " + stats);
    if (!cfg.stats_file.empty()) {
        std::ofstream out(cfg.stats_file);
        out << stats << "\n";
    }
    log_info("vigil stopped");
}

}  // namespace

void check_startup(const Config& cfg) {
    parse_listen(cfg.listen);
    if (!cfg.log_file.empty()) {
        std::ofstream probe(cfg.log_file, std::ios::app);
        if (!probe) throw std::runtime_error("log.file " + cfg.log_file + ": cannot be opened for appending");
    }
    Config dry = cfg;
    dry.audit_path.clear();  // --check-config must not create the audit log
    dry.audit_jsonl.clear();
    dry.audit_syslog.clear();
    build_gateway(dry, nullptr, false);
}

int run_gateway(const Config& cfg, const RunOptions& opts) {
    std::signal(SIGPIPE, SIG_IGN);
    raise_descriptor_limit();
    set_log_level(cfg.log_level);
    set_log_json(cfg.log_json);
    set_log_file(cfg.log_file);
    std::string stamp;
    std::unique_ptr<Gateway> gw = build_gateway(cfg, &stamp);
    const ReloadTargets targets{gw->cfg,          gw->counters,      gw->policy.rules, gw->rules_health,
                                gw->certs.material, gw->audit.get()};
    announce_start(targets);
    RuleReloader reloader(targets, stamp);
    if (!cfg.rules_source.empty() && cfg.rules_path.empty()) throw ConfigError("rules.source needs rules.path (where the bundle is kept)");
    std::unique_ptr<BundlePuller> puller;
    if (!cfg.rules_source.empty())
        puller = std::make_unique<BundlePuller>(gw->cfg, gw->rules_health, [&reloader] { reloader.poke(); });
    tcp::endpoint ep = parse_listen(cfg.listen);
    const unsigned n = cfg.threads ? cfg.threads : usable_cpus();
    // Signals are caught from here on: a SIGTERM that arrives while starting (before anyone
    // could have seen the ready file) still means a graceful stop, not death by signal.
    net::io_context main_ioc;
    net::signal_set signals(main_ioc, SIGINT, SIGTERM);
    net::signal_set hup(main_ioc, SIGHUP);
    net::signal_set usr1(main_ioc, SIGUSR1);

    Services services = gw->services();
    admin::Sources admin_sources = gw->admin_sources();
    std::vector<std::unique_ptr<Worker>> workers;
    ensure_address_free(ep);
    for (unsigned i = 0; i < n; ++i) {
        workers.push_back(std::make_unique<Worker>());
        open_acceptor(*workers.back(), ep);
        if (i == 0) ep = workers[0]->acceptor->local_endpoint();  // port 0: the others share the chosen port
    }
    gw->upstream.listen_endpoints = {ep};
    admin_sources.proxy_port = ep.port();
    admin_sources.draining = &gw->life.draining;
    admin_sources.started_s = std::time(nullptr);
    // The admin listener lives on the first worker; the proxy refuses requests for it (loop).
    std::unique_ptr<tcp::acceptor> admin = open_admin(cfg, workers[0]->ioc, ep);
    if (admin) {
        gw->upstream.listen_endpoints.push_back(admin->local_endpoint());
        net::co_spawn(workers[0]->ioc, admin::admin_accept_loop(admin_sources, *admin), net::detached);
    }
    for (auto& w : workers) {
        net::co_spawn(w->ioc, accept_loop(services, *w), net::detached);
        net::co_spawn(w->ioc, pool_sweep_loop(services, w == workers.front()), net::detached);
    }
    if (!gw->upstream.parents.empty())
        net::co_spawn(workers[0]->ioc, parent_health_loop(gw->upstream, gw->life.stopping), net::detached);

    std::vector<std::thread> threads;
    std::vector<net::executor_work_guard<net::io_context::executor_type>> guards;
    for (auto& w : workers) {
        guards.push_back(net::make_work_guard(w->ioc));
        threads.emplace_back(run_worker, w.get(), threads.size());
    }
    std::string shown = ep.address().is_v6() ? "[" + ep.address().to_string() + "]" : ep.address().to_string();
    log_info("vigil listening on " + shown + ":" + std::to_string(ep.port()) + " with " + std::to_string(n) +
             " worker threads; CA " + tls::subject_text(gw->certs.material.load()->ca->issuer.get()));
    if (admin) {
        auto aep = gw->upstream.listen_endpoints.back();
        log_info("admin listener on " + aep.address().to_string() + ":" + std::to_string(aep.port()) +
                 " (/healthz /readyz /metrics)");
    }
    if (!opts.ready_file.empty()) write_ready_file(opts.ready_file, ep, admin ? admin->local_endpoint().port() : 0);
    std::vector<Worker*> worker_list;
    for (auto& w : workers) worker_list.push_back(w.get());
    ServiceNotifier notifier(main_ioc, worker_list, gw->audit.get());
    notifier.ready("serving on " + shown + ":" + std::to_string(ep.port()) + ", ruleset version " +
                   std::to_string(gw->policy.rules.load()->version()));
    notifier.start_watchdog();

    ConfigRecheck config_recheck(opts.config_path, opts.overrides);
    std::function<void()> on_hup = [&] {
        hup.async_wait([&](error_code ec, int) {
            if (ec) return;
            log_info("received SIGHUP: checking the configuration, the rule database and the CA now");
            config_recheck.on_hup();
            reloader.poke();
            if (puller) puller->poke();
            on_hup();
        });
    };
    on_hup();
    // SIGUSR1 (logrotate's postrotate): log.file is opened again under its name. The JSON-lines
    // audit file needs nothing: the writer opens it by name for every batch.
    std::function<void()> on_usr1 = [&] {
        usr1.async_wait([&](error_code ec, int) {
            if (ec) return;
            if (reopen_log_file()) log_info("received SIGUSR1: log file reopened");
            on_usr1();
        });
    };
    on_usr1();
    net::steady_timer drain(main_ioc);
    std::chrono::steady_clock::time_point deadline;
    std::function<void()> poll = [&] {
        if (gw->life.active_sessions == 0 || std::chrono::steady_clock::now() >= deadline) {
            main_ioc.stop();
            return;
        }
        // Sessions that finished a transaction since the last look may now be idle.
        for (auto& w : workers) net::post(w->ioc, [&gw, wp = w.get()] { close_idle_sessions(gw->counters, *wp); });
        drain.expires_after(std::chrono::milliseconds(50));
        drain.async_wait([&](error_code) { poll(); });
    };
    // Stop accepting, close idle connections, let in-flight ones finish within the grace.
    bool stop_begun = false;
    auto begin_stop = [&] {
        if (stop_begun) return;
        stop_begun = true;
        log_info("finishing " + std::to_string(gw->life.active_sessions.load()) + " open connections (grace " +
                 std::to_string(cfg.shutdown_grace.count()) + " s)");
        gw->life.stopping = true;
        hup.cancel();
        usr1.cancel();
        // The admin listener stays up until the process exits: /readyz answers 503 meanwhile,
        // so a balancer sees the drain instead of a refused connection.
        deadline = std::chrono::steady_clock::now() + cfg.shutdown_grace;
        poll();
    };
    net::steady_timer drain_delay(main_ioc);
    signals.async_wait([&](error_code ec, int sig) {
        if (ec) return;
        log_info(std::string("received ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT") + ": /readyz answers 503 from now on");
        gw->life.draining = true;
        notifier.stopping("draining " + std::to_string(gw->life.active_sessions.load()) + " connections");
        signals.async_wait([&](error_code e2, int) {
            if (e2) return;
            begin_stop();  // a second signal: no more drain delay, and no grace
            deadline = std::chrono::steady_clock::now();
        });
        if (cfg.drain_delay.count() == 0) return begin_stop();
        // Balancers see 503 and move new connections elsewhere; until then, they are served.
        log_info("still accepting for proxy.drain_delay (" + std::to_string(cfg.drain_delay.count()) +
                 " s) while balancers notice");
        drain_delay.expires_after(cfg.drain_delay);
        drain_delay.async_wait([&](error_code e3) {
            if (!e3) begin_stop();
        });
    });
    main_ioc.run();
    // From here the shutdown only finishes: a repeated SIGTERM/SIGINT (a supervisor asking
    // twice) must not kill it half-way through writing the audit log. The signal_set would
    // restore the default action when destroyed, before the gateway is, so it is cleared first.
    error_code clear_ec;
    signals.clear(clear_ec);
    std::signal(SIGINT, SIG_IGN);
    std::signal(SIGTERM, SIG_IGN);

    int left = gw->life.active_sessions.load();
    for (auto& w : workers) w->ioc.stop();
    for (auto& t : threads) t.join();
    guards.clear();  // they point into the workers' io_contexts
    // Password checks and disk reads still running finish while the io_contexts they answer to
    // still exist (stopped: their answers are dropped with them).
    gw->auth.pool.join();
    gw->disk_pool.join();
    admin.reset();
    // Destroying the workers ends sessions still open past the grace period; their records are
    // submitted as they go, so the audit log is closed only after that.
    workers.clear();
    finish(gw->audit.get(), gw->counters, gw->cache.get(), gw->cfg, left);
    return 0;
}

}  // namespace vigil::gateway

// Admin endpoints. Read-only views of the gateway's state; nothing here changes it.
#include "admin/admin.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http.hpp>
#include <openssl/x509.h>

#include <ctime>

#include "wire/onboarding.hpp"

namespace vigil::admin {
namespace http = beast::http;

std::string metrics_text(Sources& src) {
    std::string out;
    auto metric = [&](const std::string& name, const char* type, const std::string& help, double value) {
        out += "# HELP vigil_" + name + " " + help + "\n# TYPE vigil_" + name + " " + type + "\nvigil_" + name + " ";
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.0f", value);
        out += std::string(buf) + "\n";
    };
#define VIGIL_METRIC(name) \
    if (std::string_view(#name) != "throttled_ms") metric(#name "_total", "counter", "Vigil counter " #name, double(src.counters.name.load()));
    VIGIL_COUNTERS(VIGIL_METRIC)
#undef VIGIL_METRIC
    // In base units on /metrics (Prometheus' naming rules); the stats file keeps throttled_ms.
    char throttled[48];
    std::snprintf(throttled, sizeof throttled, "%.3f", double(src.counters.throttled_ms.load()) / 1000);
    out += "# HELP vigil_throttled_seconds_total Seconds transfers waited for a bandwidth limit\n"
           "# TYPE vigil_throttled_seconds_total counter\nvigil_throttled_seconds_total " + std::string(throttled) + "\n";
    metric("active_connections", "gauge", "Client connections open now", src.active_sessions.load());
    auto rules = src.rules.load();
    metric("ruleset_version", "gauge", "Version of the ruleset in force", double(rules->version()));
    metric("ruleset_signatures", "gauge", "Enabled signatures in the ruleset in force", double(rules->signature_count()));
    metric("ruleset_reload_failed", "gauge", "1 while the newest rule database could not be loaded (the previous ruleset serves)",
           src.rules_health.failing ? 1 : 0);
    metric("ruleset_last_success_seconds", "gauge", "Unix time a ruleset was last loaded",
           double(src.rules_health.last_success_ms.load() / 1000));
    const int64_t now_s = std::time(nullptr);
    if (!src.cfg.rules_source.empty()) {
        metric("ruleset_bundle_version", "gauge", "The rules.source bundle version applied",
               double(src.rules_health.bundle_version.load()));
        metric("ruleset_bundle_failing", "gauge", "1 while the newest rules.source pull was not applied",
               src.rules_health.bundle_failing ? 1 : 0);
    }
    if (const int64_t loaded = src.rules_health.last_success_ms.load() / 1000; loaded > 0)
        metric("ruleset_age_seconds", "gauge",
               "Seconds since the ruleset in force was loaded (a changed rule database loads within rules.reload_interval)",
               double(now_s - loaded));
    {
        // Seconds until each CA certificate expires: the alert rules warn 30 days ahead.
        auto material = src.tls.load();
        out += "# HELP vigil_ca_expiry_seconds Seconds until the CA certificate expires (negative: expired)\n"
               "# TYPE vigil_ca_expiry_seconds gauge\n";
        auto expiry = [&](const char* which, X509* cert) {
            int days = 0, secs = 0;
            if (!cert || !ASN1_TIME_diff(&days, &secs, nullptr, X509_get0_notAfter(cert))) return;
            out += std::string("vigil_ca_expiry_seconds{ca=\"") + which + "\"} " +
                   std::to_string(int64_t(days) * 86400 + secs) + "\n";
        };
        expiry("root", material->ca->root.get());
        if (material->ca->issuer.get() != material->ca->root.get()) expiry("issuing", material->ca->issuer.get());
    }
    metric("start_time_seconds", "gauge", "Unix time the gateway started", double(src.started_s));
    out += src.counters.latency.ttfb.prometheus(
        "time_to_first_byte_seconds", "Transaction start (request head read) to the first response byte written to the client");
    out += src.counters.latency.origin_connect.prometheus("origin_connect_seconds",
                                                          "TCP connect to the origin or parent proxy, after name resolution");
    out += src.counters.latency.client_handshake.prometheus("client_tls_handshake_seconds",
                                                            "TLS handshake with a bumped client");
    out += src.counters.latency.origin_handshake.prometheus("origin_tls_handshake_seconds",
                                                            "TLS handshake with the origin, certificate verification included");
    out += src.counters.latency.mint.prometheus("mint_seconds", "Minting one leaf certificate (certificate cache misses)");
    auto cache = src.tls.load()->certs->stats();
    metric("cert_cache_entries", "gauge", "Minted certificates cached", double(cache.entries));
    metric("cert_cache_bytes", "gauge", "Bytes held by the certificate cache", double(cache.bytes));
    metric("cert_cache_hits_total", "counter", "Certificate cache hits", double(cache.hits));
    metric("cert_cache_misses_total", "counter", "Certificate cache misses", double(cache.misses));
    metric("cert_cache_mints_total", "counter", "Certificates minted", double(cache.mints));
    metric("cert_cache_evictions_total", "counter", "Certificates evicted from the cache", double(cache.evictions));
    if (src.cache) {
        metric("cache_entries", "gauge", "Responses in the HTTP cache", double(src.cache->entries()));
        metric("cache_disk_bytes", "gauge", "Bytes of the HTTP cache on disk", double(src.cache->disk_bytes()));
        metric("cache_memory_bytes", "gauge", "Bytes of cached bodies held in memory", double(src.cache->memory_bytes()));
    }
    out += src.labelled.prometheus({
        {"decisions_total", "Transactions, refusals and splices by kind, action and category"},
        {"origin_cert_errors_total", "Origin certificates rejected, by reason code"}});
    if (src.audit) {
        metric("audit_queue_depth", "gauge", "Audit records waiting for the writer", double(src.audit->queued()));
        metric("audit_records_written_total", "counter", "Audit records committed", double(src.audit->written()));
        metric("audit_records_dropped_total", "counter", "Audit records dropped", double(src.audit->dropped()));
        metric("audit_write_failures_total", "counter", "Failed audit writes", double(src.audit->failures()));
        metric("audit_healthy", "gauge", "1 while audit writes succeed", src.audit->healthy() ? 1 : 0);
        metric("audit_wal_bytes", "gauge", "Bytes of the audit log's write-ahead file (bounded; docs/audit.md)",
               double(src.audit->wal_bytes()));
        metric("audit_wal_resets_total", "counter", "Times the audit writer paused until the WAL was copied back",
               double(src.audit->wal_resets()));
    }
    if (src.shipper) {
        metric("audit_ship_connected", "gauge", "1 while the central collector (audit.ship) is connected",
               src.shipper->connected() ? 1 : 0);
        metric("audit_ship_backlog", "gauge", "Records in the log the collector has not acknowledged yet",
               double(std::max<int64_t>(0, src.shipper->newest() - src.shipper->acked())));
        metric("audit_shipped_total", "counter", "Records sent to the collector (resends included)",
               double(src.shipper->sent()));
    }
    return out;
}

http::response<http::string_body> respond(Sources& src, const http::request<http::string_body>& req,
                                          bool operator_client) {
    http::response<http::string_body> res{http::status::ok, req.version()};
    res.set(http::field::server, "Vigil");
    res.set(http::field::cache_control, "no-store");
    std::string path(req.target());
    path = path.substr(0, path.find('?'));
    if (req.method() != http::verb::get && req.method() != http::verb::head) {
        res.result(http::status::method_not_allowed);
        res.body() = "GET only\n";
    } else if (!operator_client && (path == "/healthz" || path == "/readyz" || path == "/metrics")) {
        res.result(http::status::forbidden);
        res.set(http::field::content_type, "text/plain");
        res.body() = "forbidden: this address is not in admin.allow\n";
    } else if (path == "/healthz") {
        res.set(http::field::content_type, "text/plain");
        res.body() = "ok\n";
    } else if (path == "/readyz") {
        std::string why;
        auto rules = src.rules.load();
        if (src.stopping || (src.draining && *src.draining)) why = "shutting down";
        else if (!src.cfg.rules_path.empty() && rules->version() == 0) why = "no ruleset loaded yet";
        else if (src.audit && !src.audit->healthy() && src.cfg.audit_fail_closed) why = "audit log not writable";
        res.set(http::field::content_type, "text/plain");
        res.result(why.empty() ? http::status::ok : http::status::service_unavailable);
        res.body() = why.empty() ? "ready\n" : "not ready: " + why + "\n";
        if (!src.cfg.rules_source.empty()) {
            std::lock_guard lock(src.rules_health.mu);
            res.body() += "ruleset bundle version " + std::to_string(src.rules_health.bundle_version.load()) + " from " +
                          src.cfg.rules_source + "\n";
            if (!src.rules_health.bundle_error.empty())
                res.body() += "warning: the newest bundle was not applied: " + src.rules_health.bundle_error + "\n";
        }
        // Still ready (the previous ruleset serves), but stale: said where a person looks.
        if (src.rules_health.failing) {
            std::lock_guard lock(src.rules_health.mu);
            res.body() += "warning: the rule database could not be loaded, ruleset version " +
                          std::to_string(src.rules.load()->version()) + " is still in force: " + src.rules_health.error + "\n";
        }
    } else if (path == "/metrics") {
        res.set(http::field::content_type, "text/plain; version=0.0.4");
        res.body() = metrics_text(src);
    } else {
        auto page = wire::onboarding_response(src.tls.load()->ca->root.get(), path, src.cfg, req[http::field::host],
                                              src.proxy_port);
        res.result(static_cast<http::status>(page.status));
        res.set(http::field::content_type, page.content_type);
        if (!page.filename.empty())
            res.set(http::field::content_disposition, "attachment; filename=\"" + page.filename + "\"");
        res.body() = std::move(page.body);
    }
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    return res;
}

namespace {

net::awaitable<void> admin_session(tcp::socket socket, Sources& src, bool operator_client) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buf;
    for (;;) {
        http::request_parser<http::string_body> parser;
        parser.header_limit(16 * 1024);
        parser.body_limit(16 * 1024);
        stream.expires_after(src.cfg.header_read);
        auto [ec, n] = co_await http::async_read(stream, buf, parser, use_nothrow);
        if (ec) co_return;
        auto res = respond(src, parser.get(), operator_client);
        stream.expires_after(src.cfg.io);
        auto [wec, wn] = co_await http::async_write(stream, res, use_nothrow);
        if (wec || !res.keep_alive() || src.stopping) co_return;
    }
}

}  // namespace

net::awaitable<void> admin_accept_loop(Sources& src, tcp::acceptor& acceptor) {
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(use_nothrow);
        if (ec == net::error::operation_aborted) co_return;
        if (ec) {
            // Out of descriptors: the proxy's accept loops say so; here only do not spin.
            net::steady_timer t(acceptor.get_executor(), std::chrono::milliseconds(100));
            co_await t.async_wait(use_nothrow);
            continue;
        }
        error_code rec;
        auto remote = socket.remote_endpoint(rec);
        if (rec) continue;
        const bool operator_client = any_contains(src.cfg.admin_allow, remote.address());
        if (!operator_client && !any_contains(src.cfg.allow_clients, remote.address())) continue;  // closed at once
        net::co_spawn(acceptor.get_executor(), admin_session(std::move(socket), src, operator_client), net::detached);
    }
}

}  // namespace vigil::admin

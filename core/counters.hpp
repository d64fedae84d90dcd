// A counter for every outcome, shared by all workers (relaxed atomics; read at shutdown and by tests).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace vigil::core {

#define VIGIL_COUNTERS(X)                                                                        \
    X(accepted) X(accept_failed) X(refused_client) X(requests) X(plain) X(connect) X(bumped) X(connect_denied)     \
    X(private_denied) X(loop_denied) X(bad_request) X(header_too_large) X(header_timeout) X(body_timeout) X(sni_mismatch)           \
    X(client_tls_failed) X(upstream_cert_error) X(upstream_unreachable) X(upstream_tls_failed)    \
    X(upstream_bad_response) X(upstream_timeout) X(upgrades) X(bytes_in) X(bytes_out)             \
    X(certs_minted) X(shutdown_closed_idle) X(parked) X(blocked) X(warned) X(monitored) X(spliced)          \
    X(aborted_transfers) X(unscanned) X(scan_errors) X(scan_over_budget) X(ruleset_reloads) X(ruleset_reload_failed)      \
    X(audit_written) X(audit_dropped) X(audit_failures) X(refused_limit) X(auth_ok) X(auth_failed) X(auth_throttled) X(non_tls) \
    X(aia_fetched) X(aia_failed) X(ocsp_queries) X(ocsp_unknown) X(origin_resumed) X(origin_reused) \
    X(throttled) X(throttled_ms) \
    X(compressed) X(compress_in_bytes) X(compress_out_bytes) X(parent_down) X(parent_failovers) \
    X(cache_hits) X(cache_misses) X(cache_revalidated) X(cache_stored) X(cache_store_errors) X(cache_corrupt) \
    X(cache_evicted) X(cache_invalidated) X(cache_rescanned) \
    X(h2_connections) X(h2_streams) X(h2_refused_streams) X(h2_malformed) X(h2_resets) X(h2_abuse) \
    X(h2_origin_connections) X(h2_origin_streams)

// A latency histogram for /metrics: fixed buckets from 0.5 ms to 10 s (Prometheus "le"
// bounds, cumulative on output), relaxed atomics; observing is three fetch_adds.
class Histogram {
public:
    static constexpr std::array<double, 14> kBounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                       0.1,    0.25,  0.5,    1,     2.5,  5,     10};
    void observe(std::chrono::steady_clock::duration d);
    // "# HELP", "# TYPE histogram", the _bucket lines, _sum (seconds) and _count.
    std::string prometheus(const std::string& name, const std::string& help) const;
    uint64_t count() const { return count_.load(std::memory_order_relaxed); }

private:
    std::array<std::atomic<uint64_t>, kBounds.size() + 1> buckets_{};  // the last is +Inf
    std::atomic<uint64_t> sum_us_{0}, count_{0};
};

// Times the gateway measures on every connection (docs/deploy.md#monitoring).
struct Latencies {
    Histogram ttfb;              // transaction start (request head read) to the response's first byte written
    Histogram origin_connect;    // name resolution done to TCP connected (origin or parent proxy)
    Histogram client_handshake;  // the bumped client's TLS handshake, ClientHello read to finished
    Histogram origin_handshake;  // the TLS handshake with the origin, verification included
    Histogram mint;              // minting one leaf certificate (cache misses only)
};

struct Counters {
#define VIGIL_DECLARE(name) std::atomic<uint64_t> name{0};
    VIGIL_COUNTERS(VIGIL_DECLARE)
#undef VIGIL_DECLARE
    Latencies latency;

    // {"accepted": 3, ...}
    std::string to_json() const;
};

// Counters with labels for /metrics, e.g. decisions by action and category. Label values come
// from bounded sets (actions, the ruleset's categories, certificate error codes), so the
// number of series stays small. One mutex: taken once per transaction, never held long.
class LabelledCounters {
public:
    using Labels = std::vector<std::pair<std::string, std::string>>;
    void add(const std::string& family, const Labels& labels, uint64_t n = 1);
    // Prometheus text: "# HELP" (from `help`) and "# TYPE" per family, then a line per label set.
    std::string prometheus(const std::map<std::string, std::string>& help) const;
    uint64_t get(const std::string& family, const Labels& labels) const;

private:
    static std::string key(const Labels& labels);
    mutable std::mutex mu_;
    std::map<std::string, std::map<std::string, uint64_t>> families_;  // family -> {labels} -> count
};

inline void count(std::atomic<uint64_t>& c, uint64_t n = 1) { c.fetch_add(n, std::memory_order_relaxed); }

}  // namespace vigil::core

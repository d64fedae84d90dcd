// A counter for every outcome, shared by all workers (relaxed atomics; read at shutdown and by tests).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace vigil::gateway {

#define VIGIL_COUNTERS(X)                                                                        \
    X(accepted) X(refused_client) X(requests) X(plain) X(connect) X(bumped) X(connect_denied)     \
    X(private_denied) X(loop_denied) X(bad_request) X(header_too_large) X(sni_mismatch)           \
    X(client_tls_failed) X(upstream_cert_error) X(upstream_unreachable) X(upstream_tls_failed)    \
    X(upstream_bad_response) X(upstream_timeout) X(upgrades) X(bytes_in) X(bytes_out)             \
    X(certs_minted) X(shutdown_closed_idle) X(blocked) X(warned) X(monitored) X(spliced)          \
    X(aborted_transfers) X(unscanned) X(scan_errors) X(ruleset_reloads) X(ruleset_reload_failed)      \
    X(audit_written) X(audit_dropped) X(audit_failures) X(refused_limit) X(auth_ok) X(auth_failed) X(auth_throttled) X(non_tls)

struct Counters {
#define VIGIL_DECLARE(name) std::atomic<uint64_t> name{0};
    VIGIL_COUNTERS(VIGIL_DECLARE)
#undef VIGIL_DECLARE

    // {"accepted": 3, ...}
    std::string to_json() const;
};

inline void bump(std::atomic<uint64_t>& c, uint64_t n = 1) { c.fetch_add(n, std::memory_order_relaxed); }

}  // namespace vigil::gateway

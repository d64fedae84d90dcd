// Failures as data: every way a request ends in one of Vigil's own pages other than a policy
// decision (block, warn) is a code from one table that says its status, the page's title, the
// audit action and the counter it moves. A failure is made where it is detected and answered
// where the client is; nothing between them matches strings.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/counters.hpp"
#include "wire/pages.hpp"

namespace vigil::wire {

#define VIGIL_FAILURES(X)                                                                                          \
    /* the client's request */                                                                                    \
    X(bad_request, 400, "bad_request", "Bad request", refuse, bad_request)                                        \
    X(header_too_large, 431, "bad_request", "Request header too large", refuse, bad_request)                      \
    X(header_timeout, 408, "header_timeout", "Request timeout", refuse, none)                                    \
    X(body_timeout, 408, "body_timeout", "Request timeout", refuse, body_timeout)                                 \
    X(not_a_proxy_request, 400, "not_a_proxy_request", "This is a web proxy", refuse, bad_request)                \
    X(bad_target, 400, "bad_target", "Bad request", refuse, bad_request)                                          \
    X(bad_host, 400, "bad_host", "Bad request", refuse, bad_request)                                              \
    X(host_mismatch, 400, "host_mismatch", "Bad request", refuse, bad_request)                                    \
    X(misdirected, 421, "host_mismatch", "Misdirected request", refuse, bad_request)                              \
    X(bad_connect, 400, "bad_connect", "Bad request", refuse, bad_request)                                        \
    X(method_not_allowed, 405, "method_not_allowed", "Method not allowed", refuse, bad_request)                   \
    X(bad_expect, 417, "bad_expect", "Unsupported expectation", refuse, none)                                     \
    X(port_not_allowed, 403, "port_not_allowed", "Port not allowed", refuse, connect_denied)                      \
    X(bad_continue_token, 403, "bad_continue_token", "This link has expired", refuse, none)                       \
    X(auth_required, 407, "auth_required", "Sign in to use the web gateway", refuse, none)                        \
    X(auth_throttled, 429, "auth_throttled", "Too many failed sign-ins", refuse, auth_throttled)                  \
    X(directory_unavailable, 503, "directory_unavailable", "Sign-in is unavailable", error, none)                 \
    X(cache_only_miss, 504, "cache_only_miss", "Not in the cache", error, none)                                   \
    /* the gateway itself */                                                                                      \
    X(audit_unavailable, 503, "audit_unavailable", "Service unavailable", error, none)                            \
    X(mint_failed, 500, "mint_failed", "Internal error", error, none)                                             \
    /* reaching the origin */                                                                                     \
    X(private_destination, 403, "private_destination", "Destination not allowed", refuse, private_denied)         \
    X(loop_detected, 508, "loop_detected", "Request loop refused", error, loop_denied)                            \
    X(dns_timeout, 504, "dns_timeout", "The site could not be reached", error, upstream_timeout)                  \
    X(dns_failure, 502, "dns_failure", "The site could not be reached", error, upstream_unreachable)              \
    X(connect_timeout, 504, "connect_timeout", "The site could not be reached", error, upstream_timeout)          \
    X(connection_refused, 502, "connection_refused", "The site could not be reached", error, upstream_unreachable) \
    X(connect_failed, 502, "connect_failed", "The site could not be reached", error, upstream_unreachable)        \
    X(parent_failed, 502, "parent_failed", "The parent proxy failed", error, none)                                \
    X(parent_refused, 502, "parent_refused", "The parent proxy refused the connection", error, none)              \
    X(parent_unavailable, 502, "parent_unavailable", "No parent proxy available", error, upstream_unreachable)    \
    X(tls_setup, 502, "tls_setup", "The site could not be reached", error, upstream_unreachable)                  \
    X(tls_timeout, 504, "tls_timeout", "The site could not be reached", error, upstream_timeout)                  \
    X(tls_handshake_failed, 502, "tls_handshake_failed", "The site could not be reached", error,                  \
      upstream_tls_failed)                                                                                        \
    /* the code is the certificate problem's own (expired, self_signed, ...: tls/contexts.hpp) */                \
    X(origin_certificate, 502, "", "The site's certificate could not be trusted", error, upstream_cert_error)     \
    /* the origin's answer */                                                                                     \
    X(upstream_timeout, 504, "upstream_timeout", "The site did not answer in time", error, none)                  \
    X(upstream_bad_response, 502, "upstream_bad_response", "The site sent an invalid response", error, none)      \
    X(upstream_closed, 502, "upstream_closed", "The site closed the connection", error, none)                     \
    /* a response body that did not complete (docs/audit.md); a page only when nothing was sent */                \
    X(origin_short_body, 502, "origin_short_body", "The site sent an incomplete response", aborted, none)         \
    X(origin_reset, 502, "origin_reset", "The site sent an incomplete response", aborted, none)                   \
    X(origin_timeout, 504, "origin_timeout", "The site sent an incomplete response", aborted, none)               \
    X(origin_bad_framing, 502, "origin_bad_framing", "The site sent an incomplete response", aborted, none)       \
    X(client_gone, 502, "client_gone", "The transfer was interrupted", aborted, none)                             \
    X(shutdown, 502, "shutdown", "The transfer was interrupted", aborted, none)                                   \
    X(compress_failed, 502, "compress_failed", "The transfer was interrupted", aborted, none)

enum class Fail : uint8_t {
#define VIGIL_FAIL_ENUM(name, status, code, title, action, counter) name,
    VIGIL_FAILURES(VIGIL_FAIL_ENUM)
#undef VIGIL_FAIL_ENUM
};

// One row of the table.
struct FailureKind {
    int status;
    const char* code;   // stable reason code: the page, X-Vigil-Reason, the audit record
    const char* title;  // the page's heading
    PageAction action;  // what the audit record says (aborted: the transfer had started)
    std::atomic<uint64_t> core::Counters::*counter;  // null: counted where it was detected, or not at all
};
const FailureKind& kind(Fail f);

struct Failure {
    Fail code;
    std::string detail;  // plain words: "the origin's certificate has expired"
    std::string where;   // what the user asked for (host:port or URL)
    std::string subcode = {};  // origin_certificate: the certificate problem's code
    std::vector<std::pair<std::string, std::string>> facts = {};  // shown on the page (PageInfo::facts)
    // The code the page, the audit record and the configuration (tls.origin_errors) name it by.
    std::string name() const { return subcode.empty() ? kind(code).code : subcode; }
};

// A failure detected now: counted in its table row's counter.
Failure fail(core::Counters& counters, Fail code, std::string detail, std::string where = {});

// The page that tells the client.
PageInfo page_for(const Failure& f, uint64_t conn_id = 0);

}  // namespace vigil::wire

// The failure table, and classifying a response body that did not complete (docs/audit.md,
// "Transfers that did not complete").
#include "wire/failure.hpp"

#include "wire/body.hpp"

namespace vigil::wire {
namespace {

using core::Counters;

// A row whose counter is `none` is counted where it is detected, or not at all.
constexpr std::atomic<uint64_t> Counters::*none = nullptr;

const FailureKind kKinds[] = {
#define VIGIL_FAIL_ROW(name, status, code, title, action, counter) \
    {status, code, title, PageAction::action, VIGIL_FAIL_COUNTER_##counter},
#define VIGIL_FAIL_COUNTER_none none
#define VIGIL_FAIL_COUNTER_bad_request &Counters::bad_request
#define VIGIL_FAIL_COUNTER_body_timeout &Counters::body_timeout
#define VIGIL_FAIL_COUNTER_connect_denied &Counters::connect_denied
#define VIGIL_FAIL_COUNTER_auth_throttled &Counters::auth_throttled
#define VIGIL_FAIL_COUNTER_private_denied &Counters::private_denied
#define VIGIL_FAIL_COUNTER_loop_denied &Counters::loop_denied
#define VIGIL_FAIL_COUNTER_upstream_timeout &Counters::upstream_timeout
#define VIGIL_FAIL_COUNTER_upstream_unreachable &Counters::upstream_unreachable
#define VIGIL_FAIL_COUNTER_upstream_tls_failed &Counters::upstream_tls_failed
#define VIGIL_FAIL_COUNTER_upstream_cert_error &Counters::upstream_cert_error
    VIGIL_FAILURES(VIGIL_FAIL_ROW)
#undef VIGIL_FAIL_ROW
};

}  // namespace

const FailureKind& kind(Fail f) { return kKinds[static_cast<size_t>(f)]; }

Failure fail(Counters& counters, Fail code, std::string detail, std::string where) {
    if (auto c = kind(code).counter) count(counters.*c);
    return Failure{code, std::move(detail), std::move(where)};
}

PageInfo page_for(const Failure& f, uint64_t conn_id) {
    const FailureKind& k = kind(f.code);
    PageInfo p;
    p.status = k.status;
    p.title = k.title;
    p.reason = f.detail;
    p.host = f.where;
    p.code = f.name();
    p.conn_id = conn_id;
    p.action = k.action;
    p.facts = f.facts;
    return p;
}

TransferFailure classify_transfer_failure(RelayError relayed, const error_code& cut, bool stopping, Counters& counters) {
    TransferFailure t{Failure{Fail::origin_short_body, {}}};
    Failure& f = t.failure;
    const bool before_head = relayed == RelayError::read_before_head || relayed == RelayError::malformed_before_head;
    if (relayed == RelayError::malformed_before_head || relayed == RelayError::malformed) {
        count(counters.upstream_bad_response);
        f = {Fail::origin_bad_framing, "the origin's response body is not valid HTTP/1.1 framing"};
    } else if (relayed == RelayError::write) {
        f = {stopping ? Fail::shutdown : Fail::client_gone, "the client's connection failed during the response"};
    } else if (relayed == RelayError::transform) {
        f = {Fail::compress_failed, "compressing the response failed"};
    } else if (stopping && (cut == net::error::operation_aborted || cut == net::error::bad_descriptor)) {
        f = {Fail::shutdown, "the transfer was cut at the end of the shutdown grace period"};
    } else if (cut == beast::error::timeout) {
        count(counters.upstream_timeout);
        f = {Fail::origin_timeout, "the origin stopped sending the response body (timeouts.io)"};
    } else if (cut == net::error::connection_reset || cut == net::error::broken_pipe) {
        count(counters.upstream_bad_response);
        f = {Fail::origin_reset, "the origin reset the connection during the response body"};
    } else {
        count(counters.upstream_bad_response);
        f = {Fail::origin_short_body, "the origin closed the connection before the end of the response body" +
                                          (cut ? " (" + cut.message() + ")" : std::string())};
    }
    t.page_possible = before_head && f.code != Fail::client_gone && f.code != Fail::shutdown;
    return t;
}

}  // namespace vigil::wire

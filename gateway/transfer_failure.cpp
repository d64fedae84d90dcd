// Classifying a response body that did not complete: one table of codes for the audit record,
// the log and the page (docs/audit.md, "Transfers that did not complete").
#include "gateway/http_io.hpp"

namespace vigil::gateway {

TransferFailure classify_transfer_failure(RelayError relayed, const error_code& cut, bool stopping, Counters& counters) {
    TransferFailure f;
    const bool before_head = relayed == RelayError::read_before_head || relayed == RelayError::malformed_before_head;
    if (relayed == RelayError::malformed_before_head || relayed == RelayError::malformed) {
        bump(counters.upstream_bad_response);
        f.code = "origin_bad_framing";
        f.detail = "the origin's response body is not valid HTTP/1.1 framing";
    } else if (relayed == RelayError::write) {
        f.code = stopping ? "shutdown" : "client_gone";
        f.detail = "the client's connection failed during the response";
    } else if (relayed == RelayError::transform) {
        f.code = "compress_failed";
        f.detail = "compressing the response failed";
    } else if (stopping && (cut == net::error::operation_aborted || cut == net::error::bad_descriptor)) {
        f.code = "shutdown";
        f.detail = "the transfer was cut at the end of the shutdown grace period";
    } else if (cut == beast::error::timeout) {
        bump(counters.upstream_timeout);
        f.code = "origin_timeout";
        f.detail = "the origin stopped sending the response body (timeouts.io)";
        f.status = 504;
    } else if (cut == net::error::connection_reset || cut == net::error::broken_pipe) {
        bump(counters.upstream_bad_response);
        f.code = "origin_reset";
        f.detail = "the origin reset the connection during the response body";
    } else {
        bump(counters.upstream_bad_response);
        f.code = "origin_short_body";
        f.detail = "the origin closed the connection before the end of the response body" +
                   (cut ? " (" + cut.message() + ")" : std::string());
    }
    f.page_possible = before_head && f.code != "client_gone" && f.code != "shutdown";
    return f;
}

}  // namespace vigil::gateway

// What may be forwarded: request-target and authority parsing, strict HTTP/1.1 framing checks,
// and the hop-by-hop header rules. Pure functions, so the rules are tested without sockets.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/beast/http/fields.hpp>

#include "io/address.hpp"

namespace vigil::wire {

using io::Authority;
using io::AbsoluteUrl;
using io::parse_authority;
using io::parse_absolute_url;
using io::full_url;
using io::iequals;
using io::trim;
using io::lower;

struct Rejection {
    int status = 400;    // 400, 431, 501
    std::string reason;  // plain words for the error page and the log
};


// Checks the raw request head bytes (request line up to and including the blank line):
// obs-fold, bare CR or LF, NUL and control bytes, CR/LF smuggled in %-encoding of the target.
std::optional<Rejection> check_raw_head(std::string_view head);

// What the bytes of a head received so far already show to be malformed, before the head is
// complete: a bare CR or LF (a request written with LF or CR line ends, or LF CR), or a
// request line that is complete and cannot be one (not `METHOD SP target SP HTTP/1.0|1.1`,
// e.g. HTTP/0.9's `GET /` or `HTTP/5.6`). Such a head can never complete by Vigil's rules:
// it is answered at once instead of waiting for timeouts.header_read.
// `from`: bytes before it were checked already (a trickled head is not rescanned each read).
std::optional<Rejection> check_partial_head(std::string_view data, size_t from = 0);

// Whether the start of a chunked body (the bytes that came with the head) has a chunk-size
// line ending in a bare LF: Beast waits for a CRLF that never comes; Vigil refuses at once.
bool first_chunk_line_bad(std::string_view body_start);
// Whether the bytes hold a LF not preceded by CR (framing lines need CRLF).
bool has_bare_lf(std::string_view bytes);

// An Accept-Encoding list with only the codings Vigil can decode for scanning (gzip, x-gzip,
// deflate, br, identity; their parameters kept); "" when none is left (then: identity).
std::string decodable_codings(std::string_view accept_encoding);

// All field lines named `name`, as the one comma-separated list they form (RFC 9110 5.3):
// two `Content-Encoding: gzip` lines are "gzip, gzip", never just the first.
std::string field_list(const boost::beast::http::fields& fields, boost::beast::http::field name);

// Checks the parsed fields: one Content-Length of digits only, Transfer-Encoding exactly
// "chunked" and never beside Content-Length, Connection not naming framing headers, field count.
std::optional<Rejection> check_request_fields(const boost::beast::http::fields& fields, size_t max_fields);

// Same framing rules for a response; a violation makes the response unforwardable (502).
std::optional<std::string> check_response_fields(const boost::beast::http::fields& fields);

// True for headers that describe one hop and must not be forwarded: the fixed list plus
// every name listed in the message's Connection header(s).
class HopByHop {
public:
    explicit HopByHop(const boost::beast::http::fields& fields);
    bool contains(std::string_view name) const;
    bool connection_has(std::string_view token) const;  // e.g. "upgrade"

private:
    std::string connection_tokens_;  // ",tok1,tok2," as sent (compared ignoring case)
};

// The Host field for a request to `a` (IPv6 in brackets; the port unless it is the scheme's default).
std::string host_header(const Authority& a, bool default_443);

// NTLM and Negotiate authenticate the connection, not the request.
bool connection_bound_auth(std::string_view authorization);


}  // namespace vigil::wire

// HTTP/2 to HTTP/1.1 and back (RFC 9113 §8): a stream's header list becomes the HTTP/1.1
// request head the relay parses with its usual checks, and a response head becomes the header
// list sent on the stream. Pure functions, tested without sockets, like framing.hpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "wire/framing.hpp"

namespace vigil::wire {

// A request's header block as it arrived on a stream (pseudo-headers apart), with its size
// counted as HPACK counts it (name + value + 32 per field, RFC 7541 §4.1).
struct H2RequestHead {
    std::string method, scheme, authority, path, protocol;
    std::vector<std::pair<std::string, std::string>> fields;  // regular fields, names lowercase
    size_t list_size = 0;
    bool too_large = false;  // over the limit: the rest of the block was not kept

    // Adds one decoded field; false when it breaks a rule that makes the request malformed
    // (RFC 9113 §8.2, §8.3): pseudo-header after a regular field, unknown or repeated
    // pseudo-header, name not lowercase, connection-specific field, CR/LF/NUL in a value.
    bool add(std::string_view name, std::string_view value, size_t limit, std::string& error);
};

// How the request body is framed in the HTTP/1.1 head.
enum class H2Body { none, length, chunked };

struct H1Request {
    std::string head;  // "METHOD /path HTTP/1.1\r\nHost: ...\r\n...\r\n"
    H2Body body = H2Body::none;
};

// The HTTP/1.1 head for a complete request header block. `end_stream`: the block ended the
// stream (no body). A Rejection (400, or 405 for CONNECT, which HTTP/2 tunnels Vigil does not
// carry) for what cannot be forwarded safely: missing or bad pseudo-headers, :authority and
// Host naming different hosts, userinfo in :authority, a Content-Length that is not one
// number, a body with a method that cannot have one is kept (HTTP allows it).
std::optional<Rejection> h1_request(const H2RequestHead& h, bool end_stream, H1Request& out);

// A response head's fields for HTTP/2: names lowercased; connection-specific fields (and those
// the Connection field names) dropped, as RFC 9113 §8.2.2 requires.
std::vector<std::pair<std::string, std::string>> h2_response_fields(const boost::beast::http::fields& fields);

}  // namespace vigil::wire

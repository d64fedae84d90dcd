// HTTP/2 <-> HTTP/1.1 head translation. Like framing.cpp: when in doubt, reject.
#include "wire/h2_translate.hpp"

#include <algorithm>

namespace vigil::wire {
namespace http = boost::beast::http;
namespace {

// RFC 9113 §8.2.2: fields that only mean something on one HTTP/1.1 connection.
bool connection_specific(std::string_view name) {
    return name == "connection" || name == "proxy-connection" || name == "keep-alive" ||
           name == "transfer-encoding" || name == "upgrade";
}

bool token_char(unsigned char c) {
    if (c >= 'a' && c <= 'z') return true;
    if (c >= '0' && c <= '9') return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(char(c)) != std::string_view::npos;
}

bool valid_value(std::string_view v) {
    for (unsigned char c : v)
        if (c == '\r' || c == '\n' || c == 0) return false;
    // RFC 9113 §8.2.1: no leading or trailing whitespace.
    return v.empty() || (v.front() != ' ' && v.front() != '\t' && v.back() != ' ' && v.back() != '\t');
}

Rejection bad(std::string why) { return Rejection{400, "malformed HTTP/2 request: " + std::move(why)}; }

// What may stand in a request line: the method as HTTP/1.1 heads have it (upper-case letters
// and '-'), a target of visible ASCII without '#'. A space would split the line.
bool method_ok(std::string_view m) {
    return std::all_of(m.begin(), m.end(), [](char c) { return (c >= 'A' && c <= 'Z') || c == '-'; });
}
bool target_ok(std::string_view t) {
    return std::all_of(t.begin(), t.end(), [](char c) { return c > 0x20 && c < 0x7f && c != '#'; });
}

}  // namespace

bool H2RequestHead::add(std::string_view name, std::string_view value, size_t limit, std::string& error) {
    list_size += name.size() + value.size() + 32;
    if (list_size > limit) too_large = true;
    if (name.empty()) {
        error = "empty field name";
        return false;
    }
    if (!valid_value(value)) {
        error = "CR, LF, NUL or surrounding whitespace in the value of " + std::string(name.substr(0, 64));
        return false;
    }
    if (name.front() == ':') {
        if (!fields.empty()) {
            error = "pseudo-header " + std::string(name.substr(0, 32)) + " after a regular field";
            return false;
        }
        std::string* slot = name == ":method" ? &method : name == ":scheme" ? &scheme : name == ":authority" ? &authority
                          : name == ":path" ? &path : name == ":protocol" ? &protocol : nullptr;
        if (!slot) {
            error = "unknown pseudo-header " + std::string(name.substr(0, 32));
            return false;
        }
        if (!slot->empty()) {
            error = "repeated pseudo-header " + std::string(name);
            return false;
        }
        if (value.empty()) {
            error = "empty pseudo-header " + std::string(name);
            return false;
        }
        *slot = value;
        return true;
    }
    for (unsigned char c : name) {
        if (!token_char(c)) {
            error = "field name is not a lower-case token";
            return false;
        }
    }
    if (connection_specific(name)) {
        error = "connection-specific field " + std::string(name);
        return false;
    }
    if (name == "te" && value != "trailers") {
        error = "TE other than \"trailers\"";
        return false;
    }
    if (!too_large) fields.emplace_back(name, value);
    return true;
}

std::optional<Rejection> h1_request(const H2RequestHead& h, bool end_stream, H1Request& out) {
    if (h.too_large) return Rejection{431, "the request's header list is larger than limits.max_header_bytes"};
    if (h.method.empty()) return bad("no :method");
    if (h.method == "CONNECT")
        return Rejection{405, "CONNECT inside an HTTP/2 connection (a tunnel in a tunnel, or WebSocket over HTTP/2) "
                              "is not carried; WebSocket clients fall back to HTTP/1.1"};
    if (!h.protocol.empty()) return bad(":protocol without CONNECT");
    if (h.scheme != "https") return bad(":scheme must be https inside a TLS connection");
    if (!method_ok(h.method)) return bad(":method must be upper-case letters");
    if (h.path.empty() || (h.path.front() != '/' && !(h.path == "*" && h.method == "OPTIONS")))
        return bad(":path must be an absolute path");
    if (!target_ok(h.path)) return bad(":path holds a space, '#' or a byte outside visible ASCII");
    if (h.authority.find('@') != std::string::npos) return bad("userinfo in :authority");
    if (!h.authority.empty() && !parse_authority(h.authority, uint16_t(443))) return bad(":authority is not host[:port]");

    std::string host;
    int hosts = 0;
    std::string cookie;
    std::optional<std::string> length;
    for (const auto& [name, value] : h.fields) {
        if (name == "host") {
            host = value;
            ++hosts;
        } else if (name == "cookie") {
            // RFC 9113 §8.2.3: cookie crumbs are joined with "; " for HTTP/1.1.
            if (!cookie.empty()) cookie += "; ";
            cookie += value;
        } else if (name == "content-length") {
            if (length && *length != value) return bad("two different Content-Length values");
            if (value.empty() || value.size() > 18 || !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; }))
                return bad("Content-Length is not a number");
            length = value;
        }
    }
    if (hosts > 1) return bad("more than one Host field");
    if (h.authority.empty() && host.empty()) return bad("neither :authority nor Host");
    if (!host.empty() && !parse_authority(host, uint16_t(443))) return bad("Host is not host[:port]");
    // RFC 9113 §8.3.1: Host and :authority must name the same thing (compared as URIs compare
    // hosts: case-insensitively); :authority is what is forwarded.
    if (!h.authority.empty() && !host.empty() && !iequals(host, h.authority))
        return bad("Host (" + host.substr(0, 128) + ") differs from :authority (" + h.authority.substr(0, 128) + ")");
    if (end_stream && length && *length != "0") return bad("Content-Length without a body");

    std::string& s = out.head;
    s.reserve(256 + h.list_size);
    s.append(h.method).append(" ").append(h.path).append(" HTTP/1.1\r\nHost: ");
    s.append(h.authority.empty() ? host : h.authority).append("\r\n");
    for (const auto& [name, value] : h.fields) {
        if (name == "host" || name == "cookie" || name == "te" || name == "content-length") continue;
        s.append(name).append(": ").append(value).append("\r\n");
    }
    if (!cookie.empty()) s.append("cookie: ").append(cookie).append("\r\n");
    if (length) {
        s.append("content-length: ").append(*length).append("\r\n");
        out.body = *length == "0" ? H2Body::none : H2Body::length;
    } else if (!end_stream) {
        s.append("transfer-encoding: chunked\r\n");
        out.body = H2Body::chunked;
    }
    s.append("\r\n");
    return std::nullopt;
}

std::vector<std::pair<std::string, std::string>> h2_response_fields(const http::fields& fields) {
    HopByHop hop(fields);
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& f : fields) {
        const std::string name = lower(f.name_string());
        // Content-Length stays: on a stream it says what the DATA frames add up to (RFC 9113 §8.1.1).
        if (connection_specific(name) || name == "te" || name == "trailer" || name == "proxy-authenticate" ||
            hop.connection_has(name))
            continue;
        out.emplace_back(name, std::string(f.value()));
    }
    return out;
}

}  // namespace vigil::wire

// Framing and request-target rules. When in doubt: reject, never normalise.
#include "wire/framing.hpp"

#include <algorithm>
#include <charconv>
#include <strings.h>

namespace vigil::wire {
namespace http = boost::beast::http;

std::optional<Rejection> check_raw_head(std::string_view head) {
    auto line_end = head.find("\r\n");
    if (line_end == std::string_view::npos) return Rejection{400, "incomplete request head"};
    // Methods are case-sensitive tokens; anything but upper-case letters (and '-') is refused
    // rather than passed on for an origin to interpret ("get" vs "GET").
    auto sp = head.find(' ');
    if (sp == 0 || sp == std::string_view::npos || sp > line_end) return Rejection{400, "malformed request line"};
    for (char c : head.substr(0, sp))
        if (!((c >= 'A' && c <= 'Z') || c == '-')) return Rejection{400, "the method must be upper-case letters"};
    std::string target_line = lower(head.substr(0, line_end));
    if (target_line.find("%0d") != std::string::npos || target_line.find("%0a") != std::string::npos ||
        target_line.find("%00") != std::string::npos)
        return Rejection{400, "encoded CR, LF or NUL in the request target"};
    for (size_t i = 0; i < head.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(head[i]);
        if (c == '\r') {
            if (i + 1 >= head.size() || head[i + 1] != '\n') return Rejection{400, "bare CR in the request head"};
        } else if (c == '\n') {
            if (i == 0 || head[i - 1] != '\r') return Rejection{400, "bare LF in the request head"};
            if (i + 1 < head.size() && (head[i + 1] == ' ' || head[i + 1] == '\t'))
                return Rejection{400, "obsolete line folding (obs-fold) in a header"};
        } else if (c == 0 || (c < 0x20 && c != '\t') || c == 0x7f) {
            return Rejection{400, "control character in the request head"};
        }
    }
    return std::nullopt;
}

std::optional<Rejection> check_partial_head(std::string_view data, size_t from) {
    for (size_t i = from > 0 ? from - 1 : 0; i < data.size(); ++i) {
        if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r')) return Rejection{400, "bare LF in the request head"};
        if (data[i] == '\r' && i + 1 < data.size() && data[i + 1] != '\n')
            return Rejection{400, "bare CR in the request head"};
    }
    const auto line_end = data.find("\r\n");
    if (line_end == std::string_view::npos || line_end + 2 <= from) return std::nullopt;  // checked before
    const std::string_view line = data.substr(0, line_end);
    const auto sp1 = line.find(' '), sp2 = line.rfind(' ');
    if (sp1 == std::string_view::npos || sp1 == sp2 || sp1 == 0 || sp2 == sp1 + 1 || line.find(' ', sp1 + 1) != sp2)
        return Rejection{400, "malformed request line (METHOD target HTTP/1.1 expected)"};
    const std::string_view version = line.substr(sp2 + 1);
    if (version != "HTTP/1.1" && version != "HTTP/1.0")
        return Rejection{400, "unsupported HTTP version \"" + std::string(version.substr(0, 16)) + "\" (HTTP/1.1 and 1.0 only)"};
    return std::nullopt;
}

bool first_chunk_line_bad(std::string_view body_start) {
    const auto lf = body_start.find('\n');
    return lf != std::string_view::npos && (lf == 0 || body_start[lf - 1] != '\r');
}

bool has_bare_lf(std::string_view bytes) {
    for (auto lf = bytes.find('\n'); lf != std::string_view::npos; lf = bytes.find('\n', lf + 1))
        if (lf == 0 || bytes[lf - 1] != '\r') return true;
    return false;
}

std::string decodable_codings(std::string_view accept_encoding) {
    std::string out;
    for (auto v = accept_encoding; !v.empty();) {
        const auto comma = v.find(',');
        const auto item = trim(v.substr(0, comma));
        v = comma == std::string_view::npos ? std::string_view() : v.substr(comma + 1);
        const auto coding = lower(trim(item.substr(0, item.find(';'))));
        if (coding != "gzip" && coding != "x-gzip" && coding != "deflate" && coding != "br" && coding != "identity")
            continue;
        if (!out.empty()) out += ", ";
        out.append(item);
    }
    return out;
}

std::string field_list(const http::fields& fields, http::field name) {
    std::string out;
    for (auto [it, end] = fields.equal_range(name); it != end; ++it) {
        const auto v = trim(it->value());
        if (v.empty()) continue;
        if (!out.empty()) out += ", ";
        out.append(v);
    }
    return out;
}

namespace {

// Header names that differ from a framing or hop-by-hop header only by `_` for `-` (and case):
// some origin stacks (CGI/WSGI environments, some frameworks) fold `_` into `-`, which would
// make `Transfer_Encoding: chunked` a second framing header there. Refused, never forwarded.
std::optional<std::string> framing_look_alike(std::string_view name) {
    if (name.find('_') == std::string_view::npos) return std::nullopt;
    std::string folded = lower(name);
    std::replace(folded.begin(), folded.end(), '_', '-');
    for (const char* real : {"transfer-encoding", "content-length", "host", "connection", "proxy-connection",
                             "keep-alive", "te", "trailer", "upgrade", "expect", "content-encoding"})
        if (folded == real) return "header \"" + std::string(name.substr(0, 64)) + "\" looks like " + real;
    return std::nullopt;
}

std::optional<std::string> check_framing(const http::fields& fields) {
    size_t cl_count = 0, te_count = 0;
    for (const auto& f : fields) {
        if (f.name() == http::field::content_length) {
            ++cl_count;
            auto v = trim(f.value());
            if (v.empty() || !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; }))
                return "invalid Content-Length";
        } else if (f.name() == http::field::transfer_encoding) {
            ++te_count;
            if (!iequals(trim(f.value()), "chunked")) return "unsupported Transfer-Encoding (only \"chunked\")";
        }
    }
    if (cl_count > 1) return "more than one Content-Length";
    if (te_count > 1) return "more than one Transfer-Encoding";
    if (cl_count && te_count) return "both Content-Length and Transfer-Encoding";
    HopByHop hop(fields);
    for (const char* framing : {"content-length", "transfer-encoding", "host"})
        if (hop.connection_has(framing)) return std::string("Connection names ") + framing;
    return std::nullopt;
}

}  // namespace

std::optional<Rejection> check_request_fields(const http::fields& fields, size_t max_fields) {
    size_t n = std::distance(fields.begin(), fields.end());
    if (n > max_fields) return Rejection{431, "too many header fields (" + std::to_string(n) + ")"};
    if (auto why = check_framing(fields)) return Rejection{400, *why};
    for (const auto& f : fields)
        if (auto why = framing_look_alike(f.name_string())) return Rejection{400, *why};
    return std::nullopt;
}

std::optional<std::string> check_response_fields(const http::fields& fields) { return check_framing(fields); }

HopByHop::HopByHop(const http::fields& fields) : connection_tokens_(",") {
    for (const auto& f : fields) {
        if (f.name() != http::field::connection && f.name() != http::field::proxy_connection) continue;
        std::string_view v = f.value();
        while (!v.empty()) {
            auto comma = v.find(',');
            auto tok = trim(v.substr(0, comma));
            if (!tok.empty()) connection_tokens_.append(tok).push_back(',');
            v = comma == std::string_view::npos ? std::string_view() : v.substr(comma + 1);
        }
    }
}

bool HopByHop::connection_has(std::string_view token) const {
    // connection_tokens_ is ",a,b,": each token between two commas, as the fields spelled it.
    std::string_view rest(connection_tokens_);
    for (size_t at = 1; at < rest.size();) {
        const size_t end = rest.find(',', at);
        if (iequals(rest.substr(at, end - at), token)) return true;
        at = end + 1;
    }
    return false;
}

bool HopByHop::contains(std::string_view name) const {
    static const char* fixed[] = {"connection", "proxy-connection", "keep-alive", "te", "trailer",
                                  "transfer-encoding", "upgrade", "proxy-authorization", "proxy-authenticate",
                                  "content-length"};  // content-length: re-derived from the framing we forward
    for (const char* f : fixed)
        if (iequals(name, f)) return true;
    return connection_has(name);
}

std::string host_header(const Authority& a, bool default_443) {
    std::string h = a.host.find(':') != std::string::npos ? "[" + a.host + "]" : a.host;
    if (a.port != (default_443 ? 443 : 80)) h += ":" + std::to_string(a.port);
    return h;
}

bool connection_bound_auth(std::string_view v) {
    return v.size() >= 4 && (iequals(v.substr(0, 4), "NTLM") || (v.size() >= 9 && iequals(v.substr(0, 9), "Negotiate")));
}

}  // namespace vigil::wire

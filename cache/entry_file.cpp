// The cache's file format: one file per stored response, checked by a CRC when read back.
#include "cache/store.hpp"

#include <openssl/evp.h>
#include <zlib.h>

#include <charconv>
#include <cstdio>

#include "core/encoding.hpp"

namespace vigil::cache {

// ---- file format -----------------------------------------------------------------------
// "VIGILCACHE1\n" <header length> "\n" <header> <body> <crc32 of all before, 8 hex digits>
// The header is a list of length-prefixed strings ("5:value\n").

namespace {


void put(std::string& out, std::string_view s) {
    out += std::to_string(s.size());
    out += ':';
    out += s;
    out += '\n';
}

bool get(std::string_view in, size_t& pos, std::string& out) {
    auto colon = in.find(':', pos);
    if (colon == std::string_view::npos || colon == pos || colon - pos > 12) return false;
    size_t n = 0;
    auto r = std::from_chars(in.data() + pos, in.data() + colon, n);
    if (r.ec != std::errc() || r.ptr != in.data() + colon) return false;
    if (n > in.size() - colon - 1 || colon + 1 + n >= in.size() || in[colon + 1 + n] != '\n') return false;
    out.assign(in.substr(colon + 1, n));
    pos = colon + 2 + n;
    return true;
}

template <class T>
bool get_number(std::string_view in, size_t& pos, T& out) {
    std::string s;
    if (!get(in, pos, s)) return false;
    auto r = std::from_chars(s.data(), s.data() + s.size(), out);
    return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

bool get_fields(std::string_view in, size_t& pos, Fields& out) {
    size_t n = 0;
    if (!get_number(in, pos, n) || n > 10000) return false;
    for (size_t i = 0; i < n; ++i) {
        std::string a, b;
        if (!get(in, pos, a) || !get(in, pos, b)) return false;
        out.emplace_back(std::move(a), std::move(b));
    }
    return true;
}

std::string crc_hex(std::string_view data) {
    uLong crc = crc32(0L, Z_NULL, 0);
    for (size_t off = 0; off < data.size();) {
        const size_t n = std::min<size_t>(data.size() - off, 1u << 30);
        crc = crc32(crc, reinterpret_cast<const Bytef*>(data.data() + off), static_cast<uInt>(n));
        off += n;
    }
    char buf[9];
    std::snprintf(buf, sizeof buf, "%08lx", crc & 0xffffffffUL);
    return buf;
}

}  // namespace

std::string entry_id(const std::string& url, const Fields& vary) {
    std::string key = url;
    for (const auto& [n, v] : vary) key += "\n" + n + ": " + v;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(key.data(), key.size(), md, &len, EVP_sha256(), nullptr);
    return core::hex(md, 16);
}

std::string serialize(const Entry& e) {
    std::string h;
    put(h, e.url);
    put(h, std::to_string(e.status));
    put(h, e.reason);
    char t[64];
    std::snprintf(t, sizeof t, "%.3f", e.request_time);
    put(h, t);
    std::snprintf(t, sizeof t, "%.3f", e.response_time);
    put(h, t);
    put(h, std::to_string(e.ruleset));
    put(h, std::to_string(e.body_size));
    for (const Fields* f : {&e.vary, &e.headers}) {
        put(h, std::to_string(f->size()));
        for (const auto& [n, v] : *f) put(h, n), put(h, v);
    }
    std::string out(kMagic);
    out += std::to_string(h.size());
    out += '\n';
    out += h;
    if (e.body) out += *e.body;
    out += crc_hex(out);
    return out;
}

std::optional<Entry> parse(std::string_view file, bool with_body) {
    if (file.substr(0, kMagic.size()) != kMagic) return std::nullopt;
    size_t pos = kMagic.size();
    auto nl = file.find('\n', pos);
    if (nl == std::string_view::npos || nl - pos > 12) return std::nullopt;
    size_t hlen = 0;
    auto r = std::from_chars(file.data() + pos, file.data() + nl, hlen);
    if (r.ec != std::errc() || r.ptr != file.data() + nl || hlen > file.size() - nl - 1) return std::nullopt;
    const size_t header_start = nl + 1;
    std::string_view h = file.substr(header_start, hlen);
    Entry e;
    size_t p = 0;
    std::string req_t, res_t;
    if (!get(h, p, e.url) || !get_number(h, p, e.status) || !get(h, p, e.reason) || !get(h, p, req_t) ||
        !get(h, p, res_t) || !get_number(h, p, e.ruleset) || !get_number(h, p, e.body_size) ||
        !get_fields(h, p, e.vary) || !get_fields(h, p, e.headers) || p != h.size())
        return std::nullopt;
    try {
        e.request_time = std::stod(req_t);
        e.response_time = std::stod(res_t);
    } catch (const std::exception&) {
        return std::nullopt;
    }
    e.id = entry_id(e.url, e.vary);
    if (with_body) {
        const size_t body_start = header_start + hlen;
        if (file.size() != body_start + e.body_size + 8) return std::nullopt;
        if (crc_hex(file.substr(0, body_start + e.body_size)) != file.substr(body_start + e.body_size))
            return std::nullopt;
        e.body = std::make_shared<const std::string>(file.substr(body_start, e.body_size));
    }
    return e;
}

// ---- the store ---------------------------------------------------------------------------

}  // namespace vigil::cache

// Hex and base64 (OpenSSL's encoder for base64).
#include "core/encoding.hpp"

#include <openssl/evp.h>

namespace vigil::core {
namespace {

std::string hex_with(const char* digits, const unsigned char* p, size_t n, char separator) {
    std::string out;
    out.reserve(n * (separator ? 3 : 2));
    for (size_t i = 0; i < n; ++i) {
        if (separator && i) out += separator;
        out += digits[p[i] >> 4];
        out += digits[p[i] & 15];
    }
    return out;
}

}  // namespace

std::string hex(const unsigned char* p, size_t n) { return hex_with("0123456789abcdef", p, n, '\0'); }

std::string hex_upper(const unsigned char* p, size_t n, char separator) {
    return hex_with("0123456789ABCDEF", p, n, separator);
}

std::optional<std::vector<unsigned char>> unhex(std::string_view s) {
    if (s.size() % 2) return std::nullopt;
    auto v = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; };
    std::vector<unsigned char> out;
    out.reserve(s.size() / 2);
    for (size_t i = 0; i < s.size(); i += 2) {
        const int hi = v(s[i]), lo = v(s[i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out.push_back(static_cast<unsigned char>(hi * 16 + lo));
    }
    return out;
}

std::string sha256_hex(std::string_view data) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
    return hex(md, len);
}

std::string base64(std::string_view in) {
    std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
    out.resize(static_cast<size_t>(n));
    return out;
}

std::optional<std::string> base64_decode(std::string_view b64) {
    if (b64.empty() || b64.size() % 4) return std::nullopt;
    std::string out(b64.size(), '\0');
    const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(b64.data()), static_cast<int>(b64.size()));
    if (n < 0) return std::nullopt;
    // EVP_DecodeBlock counts the padding as zero bytes.
    const size_t pad = (b64.back() == '=') + (b64[b64.size() - 2] == '=');
    out.resize(static_cast<size_t>(n) - pad);
    return out;
}

}  // namespace vigil::core

// PBKDF2 via OpenSSL.
#include "rules/password.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <vector>

#include "rules/model.hpp"

namespace vigil::rules {
namespace {

std::string hex(const unsigned char* p, size_t n) {
    static const char* d = "0123456789abcdef";
    std::string out;
    for (size_t i = 0; i < n; ++i) out += d[p[i] >> 4], out += d[p[i] & 15];
    return out;
}

bool unhex(const std::string& s, std::vector<unsigned char>& out) {
    if (s.size() % 2) return false;
    out.clear();
    for (size_t i = 0; i < s.size(); i += 2) {
        auto v = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; };
        int hi = v(s[i]), lo = v(s[i + 1]);
        if (hi < 0 || lo < 0) return false;
        out.push_back(static_cast<unsigned char>(hi * 16 + lo));
    }
    return true;
}

std::vector<unsigned char> derive(const std::string& password, const std::vector<unsigned char>& salt, int iterations) {
    std::vector<unsigned char> out(32);
    PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), salt.data(), static_cast<int>(salt.size()),
                      iterations, EVP_sha256(), static_cast<int>(out.size()), out.data());
    return out;
}

}  // namespace

std::string hash_password(const std::string& password, int iterations) {
    if (password.size() < 8) throw RulesError("passwords must be at least 8 characters");
    std::vector<unsigned char> salt(16);
    RAND_bytes(salt.data(), static_cast<int>(salt.size()));
    auto dk = derive(password, salt, iterations);
    return "pbkdf2-sha256$" + std::to_string(iterations) + "$" + hex(salt.data(), salt.size()) + "$" +
           hex(dk.data(), dk.size());
}

bool verify_password(const std::string& password, const std::string& stored) {
    auto p1 = stored.find('$'), p2 = stored.find('$', p1 + 1), p3 = stored.find('$', p2 + 1);
    if (p1 == std::string::npos || p2 == std::string::npos || p3 == std::string::npos) return false;
    if (stored.substr(0, p1) != "pbkdf2-sha256") return false;
    int iterations = 0;
    try {
        iterations = std::stoi(stored.substr(p1 + 1, p2 - p1 - 1));
    } catch (const std::exception&) {
        return false;
    }
    std::vector<unsigned char> salt, want;
    if (iterations < 1 || !unhex(stored.substr(p2 + 1, p3 - p2 - 1), salt) || !unhex(stored.substr(p3 + 1), want))
        return false;
    auto got = derive(password, salt, iterations);
    return got.size() == want.size() && CRYPTO_memcmp(got.data(), want.data(), got.size()) == 0;
}

}  // namespace vigil::rules

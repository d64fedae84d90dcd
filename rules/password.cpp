// PBKDF2 via OpenSSL.
#include "rules/password.hpp"

#include "core/encoding.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <vector>

#include "rules/model.hpp"

namespace vigil::rules {
namespace {

using core::hex;

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
    auto salt_bytes = core::unhex(stored.substr(p2 + 1, p3 - p2 - 1));
    auto want_bytes = core::unhex(stored.substr(p3 + 1));
    if (iterations < 1 || !salt_bytes || !want_bytes) return false;
    const std::vector<unsigned char>& salt = *salt_bytes;
    const std::vector<unsigned char>& want = *want_bytes;
    auto got = derive(password, salt, iterations);
    return got.size() == want.size() && CRYPTO_memcmp(got.data(), want.data(), got.size()) == 0;
}

UserStore::UserStore(const std::vector<User>& users) {
    for (const auto& u : users)
        if (u.enabled) users_.emplace(u.name, u);
}

std::optional<std::vector<std::string>> UserStore::authenticate(const std::string& user,
                                                                const std::string& password) const {
    auto it = users_.find(user);
    static const std::string dummy = hash_password("not a real password", kPasswordIterations);
    if (it == users_.end()) {
        verify_password(password, dummy);
        return std::nullopt;
    }
    if (!verify_password(password, it->second.password_hash)) return std::nullopt;
    return it->second.groups;
}

std::vector<std::string> UserStore::groups_of(const std::string& user) const {
    auto it = users_.find(user);
    return it == users_.end() ? std::vector<std::string>{} : it->second.groups;
}

}  // namespace vigil::rules

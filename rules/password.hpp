// Password hashing for proxy users: PBKDF2-HMAC-SHA256 with a random salt, stored as
// "pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>". Verification is slow on purpose.
#pragma once

#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "rules/model.hpp"

namespace vigil::rules {

constexpr int kPasswordIterations = 210000;  // OWASP 2023 guidance for PBKDF2-HMAC-SHA256

std::string hash_password(const std::string& password, int iterations = kPasswordIterations);
// Constant-time comparison; false for malformed stored hashes.
bool verify_password(const std::string& password, const std::string& stored);

// The enabled proxy users of one ruleset, for sign-in: the user's groups when the password is
// right, nothing otherwise. An unknown user costs the same as a wrong password, so timing does
// not reveal names. Slow on purpose (PBKDF2): callers run it off the workers.
class UserStore {
public:
    UserStore() = default;
    explicit UserStore(const std::vector<User>& users);
    std::optional<std::vector<std::string>> authenticate(const std::string& user, const std::string& password) const;
    // The groups of a user signed in another way (Kerberos): an enabled local user's groups,
    // empty for everyone else.
    std::vector<std::string> groups_of(const std::string& user) const;

private:
    std::unordered_map<std::string, User> users_;
};

}  // namespace vigil::rules

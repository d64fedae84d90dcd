// Password hashing for proxy users: PBKDF2-HMAC-SHA256 with a random salt, stored as
// "pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>". Verification is slow on purpose.
#pragma once

#include <string>

namespace vigil::rules {

constexpr int kPasswordIterations = 210000;  // OWASP 2023 guidance for PBKDF2-HMAC-SHA256

std::string hash_password(const std::string& password, int iterations = kPasswordIterations);
// Constant-time comparison; false for malformed stored hashes.
bool verify_password(const std::string& password, const std::string& stored);

}  // namespace vigil::rules

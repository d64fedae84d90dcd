// Signed ruleset bundles: one source of policy for many gateways (docs/scale-out.md).
// `vigil-rules publish` writes {"payload": base64(JSON), "signature": base64(Ed25519)}, the
// payload holding the publisher's ruleset version, when it was published and every rule (not
// the local users); a gateway with `rules.source` verifies the signature with the public key in
// its configuration before it reads anything else.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "rules/model.hpp"

namespace vigil::rules {

struct Bundle {
    int64_t version = 0;    // the publishing database's ruleset version
    std::string published;  // ISO 8601 UTC
    std::string key_id;     // the first 16 hex digits of the public key's SHA-256
    RuleData rules;
};

// A new Ed25519 key: the private key as PKCS#8 PEM, the public key as base64 of its 32 bytes
// (what rules.source_key holds).
std::pair<std::string, std::string> make_signing_key();
// The public key (base64) of a private key PEM; throws RulesError.
std::string public_key_of(const std::string& private_pem);

// The bundle's bytes, signed with `private_pem`. Throws RulesError.
std::string make_bundle(const RuleData& rules, int64_t version, const std::string& private_pem);

// Verifies and reads a bundle. Throws RulesError: not a bundle, a signature that does not verify
// with `public_key_b64` (checked before the payload is parsed), a malformed payload.
Bundle open_bundle(std::string_view bytes, const std::string& public_key_b64);

}  // namespace vigil::rules

// Hex and base64, the one copy every library uses (digests, fingerprints, tokens, Basic auth).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vigil::core {

// Lower-case hex of `n` bytes; with `separator`, upper case and separated ("AB:CD:..." as
// certificate fingerprints are shown).
std::string hex(const unsigned char* p, size_t n);
std::string hex_upper(const unsigned char* p, size_t n, char separator = '\0');
// Lower-case hex back to bytes; nullopt for odd lengths or other characters.
std::optional<std::vector<unsigned char>> unhex(std::string_view text);

// SHA-256 of `data`, as lower-case hex.
std::string sha256_hex(std::string_view data);

std::string base64(std::string_view bytes);
// Standard base64 with padding (RFC 4648 4); nullopt for anything else.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace vigil::core

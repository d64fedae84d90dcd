// Transaction IDs: unique across restarts and gateways without coordination, sortable by time,
// and cheap enough for every request. A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then
// a per-thread counter and a per-thread random value (drawn once from the OS's generator).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vigil::core {

// "0193a8f4-6c1e-7a3b-9f41-2c5d8e9a0b17"
std::string new_transaction_id();

// The milliseconds since the epoch a transaction ID carries; nullopt when `id` is not one.
std::optional<int64_t> transaction_id_time(std::string_view id);

}  // namespace vigil::core

// Transaction IDs (core/txid.hpp).
#include "core/txid.hpp"

#include <openssl/rand.h>

#include <chrono>
#include <cstring>

#include "core/encoding.hpp"

namespace vigil::core {

std::string new_transaction_id() {
    // Per thread: 64 random bits once, and a counter. Two threads (or gateways) collide only if
    // their random values do, about 2^-62 per pair.
    thread_local uint64_t random = [] {
        uint64_t r = 0;
        RAND_bytes(reinterpret_cast<unsigned char*>(&r), sizeof r);
        return r;
    }();
    thread_local uint64_t counter = 0;
    const uint64_t ms = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
    const uint64_t n = counter++;
    unsigned char b[16];
    for (int i = 0; i < 6; ++i) b[i] = static_cast<unsigned char>(ms >> (40 - 8 * i));
    b[6] = static_cast<unsigned char>(0x70 | ((n >> 8) & 0x0f));  // version 7, counter
    b[7] = static_cast<unsigned char>(n & 0xff);
    const uint64_t tail = random + (n >> 12);  // the counter's high bits keep IDs apart past 4096
    for (int i = 0; i < 8; ++i) b[8 + i] = static_cast<unsigned char>(tail >> (56 - 8 * i));
    b[8] = static_cast<unsigned char>(0x80 | (b[8] & 0x3f));  // variant 10
    const std::string h = hex(b, sizeof b);
    return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" + h.substr(20);
}

std::optional<int64_t> transaction_id_time(std::string_view id) {
    if (id.size() != 36 || id[8] != '-' || id[13] != '-' || id[14] != '7' || id[18] != '-' || id[23] != '-')
        return std::nullopt;
    std::string digits;
    for (char c : id)
        if (c != '-') digits += static_cast<char>(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
    auto bytes = unhex(digits);
    if (!bytes) return std::nullopt;
    int64_t ms = 0;
    for (int i = 0; i < 6; ++i) ms = (ms << 8) | (*bytes)[static_cast<size_t>(i)];
    return ms;
}

}  // namespace vigil::core

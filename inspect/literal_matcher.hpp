// A multi-literal matcher, the prefilter in front of RE2's FilteredRE2: at each position, the
// four (or, for 3-byte literals, three) bytes starting there are looked up in a 128 KiB bitmap
// of the literals' prefixes; only on a hit are the literals with that prefix compared. The
// bitmaps stay in cache however many literals there are, which keeps 10k signatures fast.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace vigil::inspect {

class LiteralMatcher {
public:
    // Literals are matched ASCII-case-insensitively (FilteredRE2's atoms are lower case).
    explicit LiteralMatcher(const std::vector<std::string>& literals);
    // The ids of every literal that occurs in `text`, each once, in `out` (cleared first).
    void find_all(std::string_view text, std::vector<int>& out) const;

private:
    static constexpr unsigned kBits = 20;
    static uint32_t slot(uint32_t key) { return (key * 2654435761u) >> (32 - kBits); }
    struct Table {
        std::vector<uint64_t> bitmap = std::vector<uint64_t>((1u << kBits) / 64, 0);
        std::unordered_map<uint32_t, std::vector<int>> ids;  // lower-case prefix -> literal ids
        void add(uint32_t key, int id);
        bool maybe(uint32_t key) const { return bitmap[slot(key) / 64] >> (slot(key) % 64) & 1; }
    };
    Table four_, three_;                 // literals of 4+ bytes by 4-byte prefix; 3-byte literals
    std::vector<std::string> literals_;  // lower case
    std::vector<int> short_;             // literals under 3 bytes
};

}  // namespace vigil::inspect

// A multi-literal matcher, the prefilter in front of RE2's FilteredRE2.
//
// Literals are filed by length into tables that sample the text at a stride: literals of 7+
// bytes are indexed by each of their first four 4-byte windows, so looking at every fourth
// position of the text is enough to meet one of them; 5- and 6-byte literals likewise at every
// second position (when there are any, the 7+ byte literals join them there, by their first two
// windows: one pass at stride 2 costs less than two passes); 3- and 4-byte literals at every
// position, behind a per-offset byte-class test (SIMD) and a 2-byte prefix bitmap that stays
// in L1. A sampled window is hashed into a blocked Bloom filter (two bits in one 32-bit word)
// sized to ~64 bits per key, so a window that starts nothing rarely passes; only what passes
// is looked up in an open-addressed table of exact keys and compared with the literals there.
//
// On x86-64 CPUs with AVX2 the sampling runs eight windows per instruction (one multiply per
// hash, one gather for the filter words); elsewhere a scalar loop computes the same
// candidates. Tests check both against each other and against a naive search.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace vigil::inspect {

class LiteralMatcher {
public:
    enum class Isa { best, scalar };
    // Literals are matched ASCII-case-insensitively (FilteredRE2's atoms are lower case).
    explicit LiteralMatcher(const std::vector<std::string>& literals, Isa isa = Isa::best);
    // The ids of every literal that occurs in `text`, each once, in `out` (cleared first).
    void find_all(std::string_view text, std::vector<int>& out) const;
    bool vectorized() const { return avx2_; }

    static constexpr uint32_t kMul = 2654435761u, kMul2 = 0x85ebca6bu;
    // The literals indexed by one window width at one stride (public for the vector kernel).
    struct Table {
        unsigned width = 4;             // window bytes: 3 or 4
        unsigned stride = 1;            // sampled positions: multiples of this
        // A blocked Bloom filter: each key sets two bits of one 32-bit word.
        unsigned word_shift = 32;
        std::vector<uint32_t> bitmap;
        struct Probe { uint32_t word, bit1, bit2; };
        Probe probe(uint32_t key) const {
            const uint32_t h = key * kMul;
            return {h >> word_shift, (h >> (word_shift - 5)) & 31, (key * kMul2) >> 27};
        }
        bool maybe(uint32_t key) const {
            const Probe p = probe(key);
            const uint32_t w = bitmap[p.word];
            return (w >> p.bit1 & 1) & (w >> p.bit2 & 1);
        }
        struct Entry { uint32_t key = 0, begin = 0, end = 0; bool used = false; };
        std::vector<Entry> entries;     // open addressing on the exact key
        unsigned entry_shift = 32;
        // The high bits of the product: its low bits would depend on the key's low bits alone.
        size_t home(uint32_t key) const { return entry_shift >= 32 ? 0 : (key * 0x9E3779B1u) >> entry_shift; }
        struct Ref { int id; unsigned offset; };  // the window starts `offset` bytes into the literal
        std::vector<Ref> refs;          // grouped by key; Entry [begin, end)
        bool empty() const { return refs.empty(); }
        const Entry* find(uint32_t key) const;
        void build(std::vector<std::pair<uint32_t, Ref>> keyed);
    };

    // Bytes seen at one offset of the short literals, laid out for a SIMD membership test.
    struct ByteClass { std::array<uint8_t, 16> low{}, high{}; };
    struct ShortFilter {
        std::array<ByteClass, 3> at;   // bytes 0, 1, 2 of the 3- and 4-byte literals
        std::vector<uint32_t> pairs;   // their first two bytes (65536 bits)
    };

private:
    ShortFilter short_filter_;
    Table three_, four_, five_, seven_;  // by literal length: 3, 4, 5-6 (and 7+ with them), 7+
    std::vector<std::string> literals_;  // lower case
    std::vector<int> short_;             // literals under 3 bytes
    bool avx2_ = false;
};

}  // namespace vigil::inspect

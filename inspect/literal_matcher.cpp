// Strided, two-stage literal search: hashed window bitmaps (scalar or AVX2), then exact comparison.
#include "inspect/literal_matcher.hpp"

#include <algorithm>
#include <bit>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace vigil::inspect {
namespace {

struct LowerTable {
    unsigned char t[256];
    LowerTable() {
        for (int i = 0; i < 256; ++i) t[i] = static_cast<unsigned char>(i >= 'A' && i <= 'Z' ? i + 32 : i);
    }
};
const LowerTable kLower;

bool equal_lower(const unsigned char* text, const std::string& lit) {
    for (size_t i = 0; i < lit.size(); ++i)
        if (kLower.t[text[i]] != static_cast<unsigned char>(lit[i])) return false;
    return true;
}

// A window's key: its lower-cased bytes read little-endian (byte 0 in the low byte).
uint32_t window(const unsigned char* p, unsigned width) {
    uint32_t k = 0;
    for (unsigned b = 0; b < width; ++b) k |= uint32_t(kLower.t[p[b]]) << (8 * b);
    return k;
}

bool pair_bit(const std::vector<uint32_t>& pairs, uint32_t pair) { return pairs[pair >> 5] >> (pair & 31) & 1; }

using ByteClass = LiteralMatcher::ByteClass;
using ShortFilter = LiteralMatcher::ShortFilter;

struct Candidates {
    std::vector<uint32_t> three, four, five, seven;  // positions whose window passed that table's bitmap
    void clear() {
        three.clear();
        four.clear();
        five.clear();
        seven.clear();
    }
};

// The scalar sampler for one strided table, from `from` (a multiple of the stride) on.
void sample_scalar(const unsigned char* t, size_t n, size_t from, const LiteralMatcher::Table& table,
                   std::vector<uint32_t>& out) {
    if (table.empty()) return;
    for (size_t p = from; p + table.width <= n; p += table.stride)
        if (table.maybe(window(t + p, table.width))) out.push_back(static_cast<uint32_t>(p));
}

// 3- and 4-byte literals at one position: the L1-resident pair bitmap first.
void short_position(const unsigned char* t, size_t n, size_t p, const std::vector<uint32_t>& pairs,
                    const LiteralMatcher::Table& three, const LiteralMatcher::Table& four, Candidates& c) {
    if (!pair_bit(pairs, window(t + p, 2))) return;
    if (!three.empty() && three.maybe(window(t + p, 3))) c.three.push_back(static_cast<uint32_t>(p));
    if (!four.empty() && p + 4 <= n && four.maybe(window(t + p, 4))) c.four.push_back(static_cast<uint32_t>(p));
}

#if defined(__x86_64__)
#define VIGIL_AVX2 __attribute__((target("avx2"), always_inline)) inline

VIGIL_AVX2 __m256i lower256(__m256i v) {
    // Signed compares: bytes >= 0x80 are negative, so never taken for upper case.
    __m256i upper = _mm256_and_si256(_mm256_cmpgt_epi8(v, _mm256_set1_epi8('A' - 1)),
                                     _mm256_cmpgt_epi8(_mm256_set1_epi8('Z' + 1), v));
    return _mm256_add_epi8(v, _mm256_and_si256(upper, _mm256_set1_epi8(0x20)));
}

// Which of eight keys pass the table's bitmap: bit i of the result for lane i. The same
// arithmetic as Table::maybe, eight lanes at a time; both bits moved to the sign bit.
VIGIL_AVX2 unsigned passing(__m256i keys, const LiteralMatcher::Table& table) {
    const __m256i low5 = _mm256_set1_epi32(31);
    __m256i h = _mm256_mullo_epi32(keys, _mm256_set1_epi32(static_cast<int>(LiteralMatcher::kMul)));
    __m256i word = _mm256_srl_epi32(h, _mm_cvtsi32_si128(static_cast<int>(table.word_shift)));
    __m256i b1 = _mm256_and_si256(_mm256_srl_epi32(h, _mm_cvtsi32_si128(static_cast<int>(table.word_shift - 5))), low5);
    __m256i b2 = _mm256_srli_epi32(_mm256_mullo_epi32(keys, _mm256_set1_epi32(static_cast<int>(LiteralMatcher::kMul2))), 27);
    __m256i w = _mm256_i32gather_epi32(reinterpret_cast<const int*>(table.bitmap.data()), word, 4);
    __m256i top = _mm256_and_si256(_mm256_sllv_epi32(w, _mm256_sub_epi32(low5, b1)),
                                   _mm256_sllv_epi32(w, _mm256_sub_epi32(low5, b2)));
    return static_cast<unsigned>(_mm256_movemask_ps(_mm256_castsi256_ps(top)));
}

inline void record(unsigned mask, size_t first, size_t step, std::vector<uint32_t>& out) {
    for (; mask; mask &= mask - 1)
        out.push_back(static_cast<uint32_t>(first + step * static_cast<size_t>(std::countr_zero(mask))));
}

// The 4-byte windows at every fourth (second) position are the 32-bit lanes of one (two) loads.
// Each returns the first position it did not sample.
__attribute__((target("avx2"))) size_t sample_stride4(const unsigned char* t, size_t n,
                                                      const LiteralMatcher::Table& table, std::vector<uint32_t>& out) {
    size_t i = 0;
    for (; i + 32 <= n; i += 32)
        record(passing(lower256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(t + i))), table), i, 4, out);
    return i;
}

__attribute__((target("avx2"))) size_t sample_stride2(const unsigned char* t, size_t n,
                                                      const LiteralMatcher::Table& table, std::vector<uint32_t>& out) {
    size_t i = 0;
    for (; i + 34 <= n; i += 32) {
        unsigned even = passing(lower256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(t + i))), table);
        unsigned odd = passing(lower256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(t + i + 2))), table);
        record(even, i, 4, out);
        record(odd, i + 2, 4, out);
    }
    return i;
}

// Whether each byte of v is in a 256-bit set given as two 16-byte tables indexed by the low
// nibble, bit h of an entry meaning high nibble h (first table) or 8 + h (second).
VIGIL_AVX2 __m256i member(__m256i v, const ByteClass& set) {
    const __m256i nibble = _mm256_set1_epi8(0x0f);
    const __m256i bit_of = _mm256_setr_epi8(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128,  //
                                            1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128);
    __m256i lo = _mm256_and_si256(v, nibble), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble);
    __m256i low_half = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(set.low.data())));
    __m256i high_half = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(set.high.data())));
    // blendv takes the high table where v's top bit (high nibble >= 8) is set.
    __m256i row = _mm256_blendv_epi8(_mm256_shuffle_epi8(low_half, lo), _mm256_shuffle_epi8(high_half, lo), v);
    __m256i miss = _mm256_cmpeq_epi8(_mm256_and_si256(row, _mm256_shuffle_epi8(bit_of, hi)), _mm256_setzero_si256());
    return _mm256_andnot_si256(miss, _mm256_set1_epi8(-1));
}

// Every position for the 3- and 4-byte literals: 32 positions at a time, a position passes when
// its three bytes are each in the set of bytes found at that offset of some short literal; the
// few that pass go on to the pair bitmap and the hashed bitmaps.
__attribute__((target("avx2"))) size_t sample_short(const unsigned char* t, size_t n, const ShortFilter& filter,
                                                    const LiteralMatcher::Table& three,
                                                    const LiteralMatcher::Table& four, Candidates& c) {
    size_t i = 0;
    for (; i + 35 <= n; i += 32) {
        __m256i all = _mm256_set1_epi8(-1);
        for (int k = 0; k < 3; ++k) {
            __m256i v = lower256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(t + i + static_cast<size_t>(k))));
            all = _mm256_and_si256(all, member(v, filter.at[static_cast<size_t>(k)]));
        }
        for (auto m = static_cast<uint32_t>(_mm256_movemask_epi8(all)); m; m &= m - 1)
            short_position(t, n, i + static_cast<size_t>(std::countr_zero(m)), filter.pairs, three, four, c);
    }
    return i;
}
#undef VIGIL_AVX2
#endif

}  // namespace

const LiteralMatcher::Table::Entry* LiteralMatcher::Table::find(uint32_t key) const {
    const size_t mask = entries.size() - 1;
    for (size_t at = home(key);; at = (at + 1) & mask) {
        const Entry& e = entries[at];
        if (!e.used) return nullptr;
        if (e.key == key) return &e;
    }
}

void LiteralMatcher::Table::build(std::vector<std::pair<uint32_t, Ref>> keyed) {
    if (keyed.empty()) return;
    std::stable_sort(keyed.begin(), keyed.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    size_t unique = 0;
    for (size_t i = 0; i < keyed.size(); ++i) unique += i == 0 || keyed[i].first != keyed[i - 1].first;
    // ~64 bitmap bits per key, 512 B to 256 KiB (the size of a core's L2 share).
    const unsigned log_bits = std::clamp(static_cast<unsigned>(std::bit_width(unique * 64 - 1)), 12u, 21u);
    word_shift = 32 - (log_bits - 5);
    bitmap.assign((size_t(1) << log_bits) / 32, 0);
    entries.assign(std::bit_ceil(unique * 2), Entry{});
    entry_shift = 32 - static_cast<unsigned>(std::countr_zero(entries.size()));
    const size_t mask = entries.size() - 1;
    for (size_t i = 0; i < keyed.size();) {
        const uint32_t key = keyed[i].first;
        Entry e{key, static_cast<uint32_t>(refs.size()), 0, true};
        for (; i < keyed.size() && keyed[i].first == key; ++i) refs.push_back(keyed[i].second);
        e.end = static_cast<uint32_t>(refs.size());
        size_t at = home(key);
        while (entries[at].used) at = (at + 1) & mask;
        entries[at] = e;
        const Probe pr = probe(key);
        bitmap[pr.word] |= uint32_t(1) << pr.bit1 | uint32_t(1) << pr.bit2;
    }
}

LiteralMatcher::LiteralMatcher(const std::vector<std::string>& literals, Isa isa) {
    three_.width = 3;
    five_.stride = 2;
    seven_.stride = 4;
    short_filter_.pairs.assign(65536 / 32, 0);
    std::vector<std::pair<uint32_t, Table::Ref>> k3, k4, k5, k7;
    // With any 5- or 6-byte literal the text is sampled at every second position anyway: the
    // 7+ byte literals join that table (two of their windows) rather than cost a pass of their own.
    const bool one_strided_pass = std::any_of(literals.begin(), literals.end(),
                                              [](const std::string& l) { return l.size() == 5 || l.size() == 6; });
    for (size_t i = 0; i < literals.size(); ++i) {
        std::string lit = literals[i];
        for (auto& c : lit) c = static_cast<char>(kLower.t[static_cast<unsigned char>(c)]);
        const int id = static_cast<int>(i);
        const auto* p = reinterpret_cast<const unsigned char*>(lit.data());
        const size_t len = lit.size();
        if (len < 3) short_.push_back(id);
        if (len == 3 || len == 4) {
            const uint32_t pair = window(p, 2);
            short_filter_.pairs[pair >> 5] |= uint32_t(1) << (pair & 31);
            for (size_t k = 0; k < 3; ++k) {
                auto& cls = short_filter_.at[k];
                (p[k] < 0x80 ? cls.low : cls.high)[p[k] & 15] |= static_cast<uint8_t>(1u << ((p[k] >> 4) & 7));
            }
            (len == 3 ? k3 : k4).push_back({window(p, static_cast<unsigned>(len)), {id, 0}});
        }
        // A literal of length >= stride + 3 holds a whole window at a sampled position whatever
        // its alignment: the one starting at offset (-start mod stride) < stride.
        const bool seven = len >= 7 && !one_strided_pass;
        Table* strided = seven ? &seven_ : len >= 5 ? &five_ : nullptr;
        auto& keyed = seven ? k7 : k5;
        if (strided)
            for (unsigned off = 0; off < strided->stride; ++off) keyed.push_back({window(p + off, 4), {id, off}});
        literals_.push_back(std::move(lit));
    }
    three_.build(std::move(k3));
    four_.build(std::move(k4));
    five_.build(std::move(k5));
    seven_.build(std::move(k7));
#if defined(__x86_64__)
    avx2_ = isa == Isa::best && __builtin_cpu_supports("avx2");
#else
    (void)isa;
#endif
}

void LiteralMatcher::find_all(std::string_view text, std::vector<int>& found) const {
    found.clear();
    if (literals_.empty()) return;
    const auto* t = reinterpret_cast<const unsigned char*>(text.data());
    const size_t n = text.size();
    // Scratch kept per thread: a worker scans every message's headers and body chunks, and
    // allocating these each time was six allocations per call.
    thread_local Candidates c;
    thread_local std::vector<bool> seen;
    c.clear();
    size_t from7 = 0, from5 = 0, from_short = 0;
#if defined(__x86_64__)
    if (avx2_) {
        if (!seven_.empty()) from7 = sample_stride4(t, n, seven_, c.seven);
        if (!five_.empty()) from5 = sample_stride2(t, n, five_, c.five);
        if (!three_.empty() || !four_.empty()) from_short = sample_short(t, n, short_filter_, three_, four_, c);
    }
#endif
    sample_scalar(t, n, from7, seven_, c.seven);
    sample_scalar(t, n, from5, five_, c.five);
    if (!three_.empty() || !four_.empty())
        for (size_t p = from_short; p + 3 <= n; ++p) short_position(t, n, p, short_filter_.pairs, three_, four_, c);

    seen.assign(literals_.size(), false);
    auto confirm = [&](const Table& table, const std::vector<uint32_t>& positions) {
        for (uint32_t p : positions) {
            const Table::Entry* e = table.find(window(t + p, table.width));
            if (!e) continue;
            for (uint32_t k = e->begin; k < e->end; ++k) {
                const auto [id, offset] = table.refs[k];
                const std::string& lit = literals_[static_cast<size_t>(id)];
                if (seen[static_cast<size_t>(id)] || p < offset) continue;
                const size_t start = p - offset;
                if (lit.size() <= n - start && equal_lower(t + start, lit)) {
                    seen[static_cast<size_t>(id)] = true;
                    found.push_back(id);
                }
            }
        }
    };
    confirm(seven_, c.seven);
    confirm(five_, c.five);
    confirm(four_, c.four);
    confirm(three_, c.three);
    for (int id : short_) {
        const std::string& lit = literals_[static_cast<size_t>(id)];
        for (size_t i = 0; i + lit.size() <= n; ++i)
            if (equal_lower(t + i, lit)) {
                found.push_back(id);
                break;
            }
    }
}

}  // namespace vigil::inspect

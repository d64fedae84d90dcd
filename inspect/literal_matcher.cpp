// 3-gram-filtered literal search.
#include "inspect/literal_matcher.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>

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

}  // namespace

void LiteralMatcher::Table::add(uint32_t key, int id) {
    bitmap[slot(key) / 64] |= uint64_t(1) << (slot(key) % 64);
    ids[key].push_back(id);
}

LiteralMatcher::LiteralMatcher(const std::vector<std::string>& literals) {
    for (size_t id = 0; id < literals.size(); ++id) {
        std::string lit = literals[id];
        for (auto& c : lit) c = static_cast<char>(kLower.t[static_cast<unsigned char>(c)]);
        literals_.push_back(lit);
        if (lit.size() < 3) {
            short_.push_back(static_cast<int>(id));
            continue;
        }
        auto* p = reinterpret_cast<const unsigned char*>(lit.data());
        uint32_t key3 = (uint32_t(p[0]) << 16) | (uint32_t(p[1]) << 8) | p[2];
        if (lit.size() == 3) three_.add(key3, static_cast<int>(id));
        else four_.add((key3 << 8) | p[3], static_cast<int>(id));
    }
}

void LiteralMatcher::find_all(std::string_view text, std::vector<int>& found) const {
    found.clear();
    if (literals_.empty()) return;
    std::vector<bool> seen(literals_.size(), false);
    auto add = [&](int id) {
        if (!seen[static_cast<size_t>(id)]) {
            seen[static_cast<size_t>(id)] = true;
            found.push_back(id);
        }
    };
    const auto* t = reinterpret_cast<const unsigned char*>(text.data());
    const size_t n = text.size();
    auto probe = [&](const Table& table, uint32_t key, size_t i) {
        if (!table.maybe(key)) return;
        auto it = table.ids.find(key);
        if (it == table.ids.end()) return;
        for (int id : it->second) {
            const std::string& lit = literals_[static_cast<size_t>(id)];
            if (lit.size() <= n - i && equal_lower(t + i, lit)) add(id);
        }
    };
    const bool any_three = !three_.ids.empty(), any_four = !four_.ids.empty();
    if (n >= 3) {
        // key holds the lower-cased bytes t[i..i+3] (the fourth is 0 past the end).
        uint32_t key = (uint32_t(kLower.t[t[0]]) << 16) | (uint32_t(kLower.t[t[1]]) << 8) | kLower.t[t[2]];
        for (size_t i = 0; i + 2 < n; ++i) {
            uint32_t next = i + 3 < n ? kLower.t[t[i + 3]] : 0;
            uint32_t key4 = (key << 8) | next;
            if (any_four && i + 3 < n) probe(four_, key4, i);
            if (any_three) probe(three_, key, i);
            key = key4 & 0xffffff;
        }
    }
    for (int id : short_) {
        const std::string& lit = literals_[static_cast<size_t>(id)];
        for (size_t i = 0; i + lit.size() <= n; ++i)
            if (equal_lower(t + i, lit)) {
                add(id);
                break;
            }
    }
}

}  // namespace vigil::inspect

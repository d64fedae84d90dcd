// The prefilter must never miss a literal: checked against a naive search on random text.
#include "inspect/literal_matcher.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

namespace vigil::inspect {
namespace {

std::vector<int> naive(const std::vector<std::string>& lits, std::string text) {
    std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
    std::vector<int> out;
    for (size_t i = 0; i < lits.size(); ++i) {
        std::string l = lits[i];
        std::transform(l.begin(), l.end(), l.begin(), [](unsigned char c) { return std::tolower(c); });
        if (text.find(l) != std::string::npos) out.push_back(static_cast<int>(i));
    }
    return out;
}

TEST(LiteralMatcher, FindsOverlappingNestedShortAndEdgeLiterals) {
    LiteralMatcher m({"he", "she", "his", "hers", "usher", "rs"});
    std::vector<int> got;
    m.find_all("USHERS", got);
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, (std::vector<int>{0, 1, 3, 4, 5}));
    m.find_all("nothing", got);
    EXPECT_TRUE(got.empty());
    m.find_all("hi", got);
    EXPECT_TRUE(got.empty());
}

TEST(LiteralMatcher, AgreesWithNaiveSearch) {
    std::mt19937 rng(42);
    std::vector<std::string> lits;
    for (int i = 0; i < 500; ++i) {
        std::string s;
        for (int k = 0, n = 1 + static_cast<int>(rng() % 6); k < n; ++k) s += static_cast<char>('a' + rng() % 6);
        lits.push_back(s);
    }
    lits.push_back(std::string("\x00\xff\x01", 3));  // binary literals work too
    LiteralMatcher m(lits);
    for (int round = 0; round < 100; ++round) {
        std::string text;
        for (int k = 0; k < 300; ++k) text += static_cast<char>(rng() % 3 == 0 ? 'A' + rng() % 6 : 'a' + rng() % 7);
        if (round % 10 == 0) text += std::string("\x00\xff\x01", 3);
        std::vector<int> got;
        m.find_all(text, got);
        std::sort(got.begin(), got.end());
        EXPECT_EQ(got, naive(lits, text));
    }
}

// The AVX2 kernel (where the CPU has it) and the scalar loop find the same literals, across
// every byte value (the case-folding edges '@', '[', '`', '{' and 0xC1 = 'A' | 0x80 included),
// every position modulo the vector width and texts shorter than one vector.
TEST(LiteralMatcher, VectorAndScalarAgreeOnAllBytes) {
    std::mt19937 rng(7);
    const std::string alphabet = std::string("aAzZ@[`{09") + std::string("\xc1\xe1\xff\0", 4);
    auto pick = [&] { return alphabet[rng() % alphabet.size()]; };
    std::vector<std::string> lits;
    for (int i = 0; i < 3000; ++i) {
        std::string s;
        for (int k = 0, n = 1 + static_cast<int>(rng() % 7); k < n; ++k) s += pick();
        lits.push_back(s);
    }
    LiteralMatcher best(lits), scalar(lits, LiteralMatcher::Isa::scalar);
    EXPECT_FALSE(scalar.vectorized());
    for (int round = 0; round < 300; ++round) {
        std::string text;
        for (int k = 0, n = static_cast<int>(rng() % 200); k < n; ++k) text += rng() % 4 ? pick() : static_cast<char>(rng());
        std::vector<int> a, b;
        best.find_all(text, a);
        scalar.find_all(text, b);
        std::sort(a.begin(), a.end());
        std::sort(b.begin(), b.end());
        ASSERT_EQ(a, b) << "text length " << text.size();
        ASSERT_EQ(a, naive(lits, text));
    }
}

// 7+ byte literals are sampled at every fourth position on their own, and at every second one
// (by two windows instead of four) when 5- or 6-byte literals are there: both layouts find every
// occurrence, at every alignment.
TEST(LiteralMatcher, LongLiteralsAloneOrWithFiveByteOnes) {
    std::mt19937 rng(5);
    std::vector<std::string> lits;
    for (int i = 0; i < 300; ++i) {
        std::string s;
        for (int k = 0, n = 7 + static_cast<int>(rng() % 6); k < n; ++k) s += static_cast<char>('a' + rng() % 4);
        lits.push_back(s);
    }
    auto with_five = lits;
    with_five.push_back("dcbad");
    for (const auto& set : {lits, with_five}) {
        for (auto isa : {LiteralMatcher::Isa::best, LiteralMatcher::Isa::scalar}) {
            LiteralMatcher m(set, isa);
            for (int round = 0; round < 200; ++round) {
                std::string text;
                for (int k = 0, n = static_cast<int>(rng() % 120); k < n; ++k) text += static_cast<char>('a' + rng() % 4);
                std::vector<int> got;
                m.find_all(text, got);
                std::sort(got.begin(), got.end());
                ASSERT_EQ(got, naive(set, text)) << "set of " << set.size() << ", text " << text;
            }
        }
    }
}

TEST(LiteralMatcher, Empty) {
    LiteralMatcher m({});
    std::vector<int> got{1};
    m.find_all("abc", got);
    EXPECT_TRUE(got.empty());
}

}  // namespace
}  // namespace vigil::inspect

// SignatureMatcher: Hyperscan finds the places, RE2 confirms in windows. Its answers must be
// RE2's, exactly: checked against RE2 run alone over the same text for many patterns and texts,
// across chunk boundaries, for patterns Hyperscan cannot take, validators, and the deadline.
#include "inspect/signature_matcher.hpp"
#include "inspect/ruleset.hpp"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <thread>

namespace vigil::inspect {
namespace {

std::vector<int> re2_alone(const std::vector<std::string>& patterns, std::string_view text) {
    RE2::Options o;
    o.set_encoding(RE2::Options::EncodingLatin1);
    o.set_log_errors(false);
    std::vector<int> out;
    for (size_t i = 0; i < patterns.size(); ++i)
        if (RE2::PartialMatch(re2::StringPiece(text.data(), text.size()), RE2(patterns[i], o))) out.push_back(int(i));
    return out;
}

const std::vector<std::string> kPatterns = {
    R"(eval\s*\()",                         // bounded, literal
    R"((?i)\bbase64_decode\s*\(\s*['"][A-Za-z0-9+/=]{8,})",  // bounded, case-insensitive
    R"(^GET )",                              // anchored at the start of the text
    R"(\.php$)",                             // anchored at the end
    R"(a.*b)",                               // unbounded
    R"(\d{3}-\d{2}-\d{4})",                  // no literal at all
    R"([^\x00-\x7f]{3})",                    // bytes above 0x7F
    R"((?i)caf\xe9)",                        // Latin-1 letter whose case RE2 folds: RE2 alone
    R"(\bword\b)",                           // word boundaries need the text around the window
    R"(x*)",                                 // matches the empty string everywhere
    R"((foo|bar)baz{2,5}qux)",
    R"((?s)begin.{0,40}end)",
};

const std::vector<std::string> kTexts = {
    "", "GET /index.php", "POST /x.php\n", "call eval (x)", "BASE64_DECODE( 'QUJDREVGR0hJ'",
    "123-45-6789 and 12-345-6789", "caf\xc9 au lait", "swordfish word", "sword", "xx\xe9\xe8\xea",
    "foobazzzqux barbazqux", "begin\n\nend", "the a then much later b", "no match here at all",
};

TEST(SignatureMatcher, AgreesWithRe2AloneOnEveryPatternAndText) {
    SignatureMatcher m(kPatterns, {});
    EXPECT_FALSE(m.re2_only().empty());  // the Latin-1 case-folded one at least
    EXPECT_GT(m.prefiltered(), kPatterns.size() / 2);
    SignatureMatcher::Scan scan;
    for (const auto& text : kTexts) {
        m.scan(text, 0, scan);
        EXPECT_FALSE(scan.error);
        // x* matches anything, even the empty text: it is one of RE2's answers too.
        EXPECT_EQ(scan.hits, re2_alone(kPatterns, text)) << "text: " << text;
    }
}

TEST(SignatureMatcher, AgreesWithRe2AloneOnGeneratedText) {
    // Many random texts over a small alphabet that makes the patterns' pieces meet often.
    const std::vector<std::string> pieces = {"eval", " ", "(", "a", "b", "word", "s", "1", "2", "-", "\n",
                                             "base64_decode", "'", "QUJD", "foo", "baz", "z", "qux", "GET ",
                                             ".php", "begin", "end", "\xe9", "\xc9", "caf"};
    SignatureMatcher m(kPatterns, {});
    SignatureMatcher::Scan scan;
    std::mt19937 rng(3);
    for (int round = 0; round < 2000; ++round) {
        std::string text;
        const int n = int(rng() % 40);
        for (int i = 0; i < n; ++i) text += pieces[rng() % pieces.size()];
        m.scan(text, 0, scan);
        ASSERT_EQ(scan.hits, re2_alone(kPatterns, text)) << "text: " << text;
    }
}

TEST(SignatureMatcher, DatabasesTakenInTurnOnOneThreadShareItsScratch) {
    // A thread sizes its scratch once per database: a small one, then one that needs much more,
    // then the small one again, in turn as the targets of one transaction are. Each answers as
    // RE2 does every time, on this thread and on a new one.
    SignatureMatcher small({"needle"}, {});
    std::vector<std::string> many;
    for (int i = 0; i < 300; ++i) many.push_back("w" + std::to_string(i) + R"(x[0-9]{2,6}|(?i)k)" + std::to_string(i) + "=");
    SignatureMatcher large(many, {});
    const std::string text = "a needle, w17x123 and K250= here";
    auto run = [&] {
        SignatureMatcher::Scan scan;
        for (int round = 0; round < 3; ++round) {
            small.scan(text, 0, scan);
            EXPECT_FALSE(scan.error);
            EXPECT_EQ(scan.hits, std::vector<int>{0});
            large.scan(text, 0, scan);
            EXPECT_FALSE(scan.error);
            EXPECT_EQ(scan.hits, re2_alone(many, text));
            EXPECT_EQ(scan.hits.size(), 2u);
        }
    };
    run();
    std::thread other(run);
    other.join();
}

TEST(SignatureMatcher, OnlyMatchesEndingInTheNewBytesAreNew) {
    SignatureMatcher m({"needle"}, {});
    SignatureMatcher::Scan scan;
    const std::string buf = "old needle | new bytes";
    m.scan(buf, 12, scan);  // "needle" ends at 10, in what an earlier call saw
    EXPECT_TRUE(scan.hits.empty());
    const std::string split = "...nee" + std::string("dle...");
    m.scan(split, 6, scan);  // ends after the boundary: new
    EXPECT_EQ(scan.hits, std::vector<int>{0});
}

TEST(SignatureMatcher, ManyPlacesForOneSignatureAreBoundedWork) {
    // A prefilter place on every byte (Hyperscan approximates the repeat); RE2 still decides.
    SignatureMatcher m({R"((a|b){1,30}c)"}, {});
    SignatureMatcher::Scan scan;
    m.scan(std::string(60000, 'a'), 0, scan);
    EXPECT_TRUE(scan.hits.empty());
    m.scan(std::string(60000, 'a') + "c", 0, scan);
    EXPECT_EQ(scan.hits, std::vector<int>{0});
}

TEST(SignatureMatcher, ValidatorsSeeEachMatchAndStopEndsTheScan) {
    // Two digit runs: only the second passes the "validator" (ends in 7).
    SignatureMatcher m({R"(\d{4})", "zzz"}, {});
    SignatureMatcher::Hooks hooks;
    hooks.validated = {true, false};
    hooks.stop = {false, false};
    hooks.accept = [](const void*, int, std::string_view match) { return match.back() == '7'; };
    SignatureMatcher::Scan scan;
    m.scan("1234 and 5678 and 9997", 0, scan, &hooks);
    EXPECT_EQ(scan.hits, std::vector<int>{0});
    m.scan("1234 and 5678", 0, scan, &hooks);
    EXPECT_TRUE(scan.hits.empty());
    hooks.validated = {false, false};
    hooks.stop = {true, false};
    m.scan("1234 zzz", 0, scan, &hooks);
    EXPECT_EQ(scan.hits, std::vector<int>{0});  // stopped at the block: zzz is never looked at
}

TEST(SignatureMatcher, StopsAtTheDeadline) {
    SignatureMatcher m({R"((?i)caf\xe9.{0,1000}x)"}, {});  // RE2 alone, over the whole buffer
    SignatureMatcher::Scan scan;
    m.scan(std::string(1 << 16, 'a'), 0, scan, nullptr, nullptr,
           std::chrono::steady_clock::now() - std::chrono::seconds(1));
    EXPECT_TRUE(scan.out_of_time);
}

// A cache in memory, counting what it is asked.
struct MapCache : CompiledCache {
    mutable std::map<std::string, std::string> entries;
    mutable int hits = 0, stores = 0;
    std::optional<std::string> load(const std::string& key) const override {
        auto it = entries.find(key);
        if (it == entries.end()) return std::nullopt;
        ++hits;
        return it->second;
    }
    void store(const std::string& key, const std::string& data) const override {
        ++stores;
        entries[key] = data;
    }
};

TEST(SignatureMatcher, CompiledDatabasesAreCachedAndABadEntryIsCompiledAgain) {
    MapCache cache;
    SignatureMatcher::Options o;
    o.cache = &cache;
    SignatureMatcher::Scan scan;
    {
        SignatureMatcher first(kPatterns, o);
        EXPECT_EQ(cache.stores, 1);
    }
    SignatureMatcher second(kPatterns, o);  // loaded, not compiled
    EXPECT_EQ(cache.hits, 1);
    EXPECT_EQ(cache.stores, 1);
    EXPECT_EQ(second.re2_only(), SignatureMatcher(kPatterns, {}).re2_only());
    for (const auto& text : kTexts) {
        second.scan(text, 0, scan);
        EXPECT_EQ(scan.hits, re2_alone(kPatterns, text)) << "text: " << text;
    }
    // Other patterns: another entry. A damaged entry: compiled again and replaced.
    SignatureMatcher other({"zzz"}, o);
    EXPECT_EQ(cache.stores, 2);
    for (auto& [key, data] : cache.entries) data = data.substr(0, data.size() / 2) + "garbage";
    SignatureMatcher repaired(kPatterns, o);
    EXPECT_EQ(cache.stores, 3);
    repaired.scan("call eval (x)", 0, scan);
    EXPECT_EQ(scan.hits, re2_alone(kPatterns, "call eval (x)"));
}

TEST(SignatureMatcher, RejectsWhatRe2Rejects) {
    try {
        SignatureMatcher m({"ok", "(unclosed"}, {});
        FAIL();
    } catch (const std::invalid_argument& e) {
        EXPECT_EQ(std::string(e.what()).rfind("1: ", 0), 0u) << e.what();
    }
}

// Through the body scanner: a match split by chunk boundaries at every position is found, and
// one that only exists across the boundary of two chunks is found once.
TEST(SignatureMatcher, BodyScannerFindsMatchesAcrossEveryChunkBoundary) {
    rules::RuleData d;
    d.signatures.push_back({"payload", "response_body", R"((?i)base64_decode\s*\(\s*'[A-Za-z0-9+/=]{16,}')", "block",
                            "high", "", "", true});
    d.signatures.push_back({"span", "response_body", R"(BEGIN[^!]*END)", "block", "high", "", "", true});
    auto rs = RuleSet::compile(d, {});
    const std::string attack = "x = base64_decode( 'QUJDREVGR0hJSktMTU5PUFFS');";
    const std::string body = std::string(3000, 'a') + attack + std::string(3000, 'b');
    for (size_t cut = 2990; cut <= 3000 + attack.size() + 5; ++cut) {
        auto scan = rs->scan_body(Target::response_body, "");
        scan->feed(std::string_view(body).substr(0, cut));
        scan->feed(std::string_view(body).substr(cut));
        EXPECT_EQ(scan->verdict().rule, "payload") << "cut at " << cut;
    }
    for (size_t cut = 1; cut < 60; cut += 7) {  // three chunks, the match spanning all of them
        const std::string spanning = "..BEGIN" + std::string(60, 'x') + "END..";
        auto scan = rs->scan_body(Target::response_body, "");
        scan->feed(std::string_view(spanning).substr(0, cut));
        scan->feed(std::string_view(spanning).substr(cut, 40));
        scan->feed(std::string_view(spanning).substr(std::min(spanning.size(), cut + 40)));
        EXPECT_EQ(scan->verdict().rule, "span") << "cut at " << cut;
    }
}

TEST(SignatureMatcher, BodyOverItsBudgetIsUnscannedAndFollowsOnError) {
    rules::RuleData d;
    d.signatures.push_back({"slow", "response_body", R"((?i)caf\xe9.{0,1000}x)", "block", "high", "", "", true});
    InspectOptions o;
    o.scan_budget = std::chrono::milliseconds(1);
    const std::string chunk(1 << 16, 'a');
    for (bool error_block : {true, false}) {
        o.error_block = error_block;
        auto rs = RuleSet::compile(d, o);
        auto scan = rs->scan_body(Target::response_body, "");
        for (int i = 0; i < 2000 && !scan->unscanned(); ++i) scan->feed(chunk);
        EXPECT_EQ(scan->outcome(), ScanOutcome::unscanned_budget);
        EXPECT_EQ(scan->scan_result(), "unscanned-budget");
        EXPECT_EQ(scan->verdict().rule, "scan-budget");
        EXPECT_EQ(scan->verdict().action, error_block ? Action::block : Action::monitor);
    }
}

}  // namespace
}  // namespace vigil::inspect

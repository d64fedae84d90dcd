// vigil-audit's filter parser: relative and absolute times, their limits, and the values it
// refuses (each a FilterError naming the flag, never a crash or an unbounded number).
#include "audit/filter.hpp"

#include <gtest/gtest.h>

namespace vigil::audit {
namespace {

constexpr int64_t kNow = 1'800'000'000'000;

TEST(AuditFilter, RelativeAndAbsoluteTimes) {
    EXPECT_EQ(parse_time("--since", "30m", kNow), kNow - 30 * 60'000);
    EXPECT_EQ(parse_time("--since", "2h", kNow), kNow - 2 * 3'600'000);
    EXPECT_EQ(parse_time("--since", "7d", kNow), kNow - 7 * 86'400'000);
    EXPECT_EQ(parse_time("--since", "1w", kNow), kNow - 604'800'000);
    EXPECT_EQ(parse_time("--since", "2026-11-27", kNow), 1'795'737'600'000);
    EXPECT_EQ(parse_time("--since", "2026-11-27T10:00:00Z", kNow), 1'795'737'600'000 + 36'000'000);
}

TEST(AuditFilter, BadTimesAreErrorsNamingTheFlag) {
    for (const std::string& v : std::vector<std::string>{"", "h", "5x", "-5h", "99999999999999999999999h", "36600000d", "2026-13-45",
                                "yesterday", std::string("2h\0", 3), std::string("2026-11-27\0junk", 15)}) {
        try {
            parse_time("--until", v, kNow);
            ADD_FAILURE() << "accepted \"" << v << "\"";
        } catch (const FilterError& e) {
            EXPECT_EQ(std::string(e.what()).rfind("--until", 0), 0u) << e.what();
        }
    }
    EXPECT_EQ(parse_time("--since", "36500d", kNow), kNow - int64_t(36500) * 86'400'000);  // 100 years is fine
}

TEST(AuditFilter, FiltersBecomeParametersNeverSql) {
    Where w = build_filters({{"--user", "x' OR 1=1 --"}, {"--host", "Example.COM"}, {"--status", "403"},
                             {"--action", "block"}, {"--format", "json"}},
                            kNow);
    EXPECT_EQ(w.sql, " WHERE 1=1 AND user = ? AND (host = ? OR host LIKE ?) AND action = ? AND status = CAST(? AS INTEGER)");
    EXPECT_EQ(w.params, (std::vector<std::string>{"x' OR 1=1 --", "example.com", "%.example.com", "block", "403"}));
    EXPECT_EQ(build_filters({{"--cache", "REVALIDATED"}}, kNow).sql, " WHERE 1=1 AND cache = ?");
    for (const auto& [flag, value] : std::vector<std::pair<std::string, std::string>>{
             {"--host", "a%b"}, {"--host", "a_b"}, {"--host", ""}, {"--action", "nuke"}, {"--kind", "x"},
             {"--status", "2OO"}, {"--status", "99999999999999999999"}, {"--since", "later"}, {"--cache", "hit"}}) {
        EXPECT_THROW(build_filters({{flag, value}}, kNow), FilterError) << flag << " " << value;
    }
}

TEST(AuditFilter, GroupMatchesAWholeItemOfTheList) {
    Where w = build_filters({{"--group", "finance"}}, kNow);
    EXPECT_EQ(w.sql, " WHERE 1=1 AND instr(',' || grp || ',', ?) > 0");
    EXPECT_EQ(w.params, (std::vector<std::string>{",finance,"}));
    for (const std::string v : {"", "a,b"}) EXPECT_THROW(build_filters({{"--group", v}}, kNow), FilterError) << v;
}

}  // namespace
}  // namespace vigil::audit

// Rule database: schema, validated atomic writes, history and versions, JSON round trip.
#include "rules/db.hpp"
#include "rules/import.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace vigil::rules {
namespace {

struct TempDb {
    std::string path;
    TempDb() {
        char tmpl[] = "/tmp/vigil-rules-XXXXXX";
        path = std::string(::mkdtemp(tmpl)) + "/rules.db";
    }
    ~TempDb() { std::filesystem::remove_all(std::filesystem::path(path).parent_path()); }
};

RuleData sample() {
    RuleData d;
    d.categories = {{"malware", "bad"}, {"news", ""}};
    d.hosts = {{".evil.example", "malware"}, {"paper.example", "news"}};
    d.url_patterns = {{"https://x\\.example/dl/.*", "malware", "downloads", true}};
    d.signatures = {{"eicar", "response_body", "EICAR", "block", "high", "", "test file", true}};
    d.policies = {{"block-malware", 10, "", "", "", "malware", "block", true}};
    return d;
}

TEST(RuleDb, MergeLoadAndVersion) {
    TempDb t;
    auto db = RuleDb::open(t.path, RuleDb::Mode::create);
    EXPECT_EQ(db->version(), 0);
    auto n = db->merge(sample(), "tester", "import");
    EXPECT_EQ(n.hosts, 2u);
    EXPECT_EQ(db->version(), 1);
    RuleData back = db->load();
    EXPECT_EQ(back.version, 1);
    EXPECT_EQ(back.categories.size(), 2u);
    EXPECT_EQ(back.signatures[0].pattern, "EICAR");
    auto h = db->history(10);
    ASSERT_EQ(h.size(), 1u);
    EXPECT_EQ(h[0].actor, "tester");
}

TEST(RuleDb, BadPatternChangesNothing) {
    TempDb t;
    auto db = RuleDb::open(t.path, RuleDb::Mode::create);
    db->merge(sample(), "t", "import");
    std::string before = to_json(db->load());
    RuleData bad;
    bad.categories = {{"new", ""}};
    bad.hosts = {{"a.example", "new"}};
    bad.signatures = {{"bad", "url", "a{2,1}", "block", "low", "", "", true}};
    EXPECT_THROW(db->merge(bad, "t", "import"), RulesError);
    EXPECT_EQ(to_json(db->load()), before);
    EXPECT_EQ(db->version(), 1);
    RuleData unknown;
    unknown.hosts = {{"b.example", "no-such-category"}};
    EXPECT_THROW(db->merge(unknown, "t", "import"), RulesError);
    EXPECT_EQ(db->history(10).size(), 1u);
}

TEST(RuleDb, RemoveEnableDisable) {
    TempDb t;
    auto db = RuleDb::open(t.path, RuleDb::Mode::create);
    db->merge(sample(), "t", "import");
    db->set_enabled(Kind::signature, "eicar", false, "t");
    EXPECT_FALSE(db->load().signatures[0].enabled);
    EXPECT_THROW(db->remove(Kind::category, "malware", "t"), RulesError);  // a policy uses it
    db->remove(Kind::policy, "block-malware", "t");
    db->remove(Kind::category, "malware", "t");  // cascades to its hosts and URL patterns
    RuleData d = db->load();
    EXPECT_EQ(d.hosts.size(), 1u);
    EXPECT_TRUE(d.url_patterns.empty());
    EXPECT_THROW(db->remove(Kind::host, "nope.example", "t"), RulesError);
    EXPECT_THROW(db->set_enabled(Kind::host, "paper.example", false, "t"), RulesError);
    EXPECT_EQ(db->version(), 4);
}

TEST(RuleDb, JsonRoundTrip) {
    std::string json = to_json(sample());
    EXPECT_EQ(to_json(from_json(json)), json);
    EXPECT_THROW(from_json("{\"format\": \"other\"}"), RulesError);
    EXPECT_THROW(from_json("not json"), RulesError);
}

TEST(RuleDb, RefusesForeignFiles) {
    TempDb t;
    std::ofstream(t.path) << std::string(4096, 'x');
    EXPECT_THROW(RuleDb::open(t.path, RuleDb::Mode::read_only), RulesError);
    EXPECT_THROW(RuleDb::open("/nonexistent/dir/rules.db", RuleDb::Mode::read_only), RulesError);
}

TEST(RuleDb, HostPatternNormalisation) {
    EXPECT_EQ(normalize_host_pattern(" Example.COM. "), "example.com");
    EXPECT_EQ(normalize_host_pattern("*.Example.com"), "*.example.com");
    EXPECT_EQ(normalize_host_pattern(".example.com"), ".example.com");
    EXPECT_THROW(normalize_host_pattern("exa mple.com"), RulesError);
    EXPECT_THROW(normalize_host_pattern("*.*.example.com"), RulesError);
    EXPECT_THROW(normalize_host_pattern("a..b"), RulesError);
    EXPECT_THROW(normalize_host_pattern("foo.*"), RulesError);
}

// Inputs the import fuzzer exercises, kept as regressions: each is a RulesError naming the
// line, never an uncaught std::out_of_range (a priority beyond int once was).
TEST(RuleImport, HostileListLinesAreLineNumberedErrors) {
    const std::string header = "kind,name,priority,action\n";
    for (const auto& [format, text] : std::vector<std::pair<std::string, std::string>>{
             {"csv", header + "policy,p,99999999999999999999,block\n"},
             {"csv", header + "policy,p,12x,block\n"},
             {"csv", header + "policy,\"p,1,block\n"},
             {"csv", header + "rule,p,1,block\n"},
             {"domains", "ok.example\nbad..example\n"},
             {"adblock", "||ok.example^\n||a b^\n"}}) {
        try {
            parse_import_text(text, "list", format, "cat");
            ADD_FAILURE() << format << " accepted: " << text;
        } catch (const RulesError& e) {
            EXPECT_NE(std::string(e.what()).find("list:2:"), std::string::npos) << e.what();
        }
    }
    RuleData d = parse_import_text("example.com/a.b?c\n", "urls", "ut1-urls", "cat");
    ASSERT_EQ(d.url_patterns.size(), 1u);
    EXPECT_EQ(d.url_patterns[0].pattern, "https?://(www\\.)?example\\.com\\/a\\.b\\?c.*");  // quoted, never a regex
}

}  // namespace
}  // namespace vigil::rules

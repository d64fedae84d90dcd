// The HTTP cache's rules (RFC 9111) and its store: memory, disk, corruption, failures.
#include "cache/store.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <sys/stat.h>
#include <unistd.h>

namespace vigil::cache {
namespace {

namespace fs = std::filesystem;

TEST(CacheRules, CacheControlParsing) {
    auto cc = parse_cache_control("Max-Age=\"60\", no-cache=\"set-cookie\", s-maxage=x, private, max-stale");
    EXPECT_EQ(cc.max_age, 60);
    EXPECT_TRUE(cc.no_cache);
    EXPECT_EQ(cc.s_maxage, 0);  // not a number: stale
    EXPECT_TRUE(cc.private_);
    EXPECT_TRUE(cc.max_stale_any);
    EXPECT_EQ(parse_cache_control("max-age=10, max-age=99").max_age, 10);  // the first wins
    EXPECT_EQ(parse_cache_control("max-age=99999999999999").max_age, int64_t(1) << 31);
}

TEST(CacheRules, HttpDates) {
    EXPECT_EQ(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777);
    EXPECT_EQ(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), 784111777);
    EXPECT_EQ(parse_http_date("Sun Nov  6 08:49:37 1994"), 784111777);
    EXPECT_FALSE(parse_http_date("0"));
    EXPECT_FALSE(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT trailing"));
    EXPECT_EQ(format_http_date(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
}

Entry entry(Fields headers, int status = 200, double at = 1000) {
    Entry e;
    e.url = "http://a.example/x";
    e.status = status;
    e.headers = std::move(headers);
    e.request_time = at;
    e.response_time = at;
    return e;
}

TEST(CacheRules, FreshnessLifetimeOrder) {
    const std::string date = format_http_date(1000);
    EXPECT_EQ(freshness_lifetime(entry({{"Cache-Control", "max-age=5, s-maxage=7"}})), 7);
    EXPECT_EQ(freshness_lifetime(entry({{"Cache-Control", "max-age=5"}, {"Expires", format_http_date(2000)}})), 5);
    EXPECT_EQ(freshness_lifetime(entry({{"Date", date}, {"Expires", format_http_date(1300)}})), 300);
    EXPECT_EQ(freshness_lifetime(entry({{"Date", date}, {"Expires", "0"}})), 0);
    // Heuristic: a tenth of the time since Last-Modified, for heuristically cacheable statuses only.
    EXPECT_EQ(freshness_lifetime(entry({{"Date", date}, {"Last-Modified", format_http_date(0)}})), 100);
    EXPECT_EQ(freshness_lifetime(entry({{"Date", date}, {"Last-Modified", format_http_date(0)}}, 302)), 0);
    EXPECT_EQ(freshness_lifetime(entry({{"Date", format_http_date(10'000'000)}, {"Last-Modified", format_http_date(0)}})),
              86400);
}

TEST(CacheRules, CurrentAge) {
    Entry e = entry({{"Date", format_http_date(990)}, {"Age", "30"}});
    e.request_time = 998;
    e.response_time = 1000;
    // apparent age 10; corrected age 30 + 2; resident 5.
    EXPECT_DOUBLE_EQ(current_age(e, 1005), 37);
    for (const char* bad : {"x", "-5", "1.0", "1, 2", ""}) {
        e.headers = {{"Age", bad}};
        EXPECT_GE(current_age(e, 1005), double(int64_t(1) << 31)) << bad;  // an invalid Age: stale
    }
    e.headers = {};
    EXPECT_DOUBLE_EQ(current_age(e, 1005), 7);
}

TEST(CacheRules, WhatIsStored) {
    const Fields get{{"Host", "a.example"}};
    const Fields fresh{{"Cache-Control", "max-age=60"}};
    EXPECT_EQ(not_storable("GET", get, 200, fresh), "");
    EXPECT_EQ(not_storable("POST", get, 200, fresh), "method");
    EXPECT_EQ(not_storable("GET", get, 206, fresh), "status");
    EXPECT_EQ(not_storable("GET", {{"Cache-Control", "no-store"}}, 200, fresh), "no-store");
    EXPECT_EQ(not_storable("GET", get, 200, {{"Cache-Control", "max-age=60, private"}}), "private");
    EXPECT_EQ(not_storable("GET", {{"Authorization", "Basic x"}}, 200, fresh), "authorization");
    EXPECT_EQ(not_storable("GET", {{"Authorization", "Basic x"}}, 200, {{"Cache-Control", "s-maxage=60"}}), "");
    EXPECT_EQ(not_storable("GET", {{"Cookie", "a=b"}}, 200, fresh), "cookie");
    EXPECT_EQ(not_storable("GET", {{"Cookie", "a=b"}}, 200, {{"Cache-Control", "public, max-age=60"}}), "");
    EXPECT_EQ(not_storable("GET", get, 200, {{"Cache-Control", "max-age=60"}, {"Set-Cookie", "a=b"}}), "set-cookie");
    EXPECT_EQ(not_storable("GET", get, 200, {{"Cache-Control", "max-age=60"}, {"Vary", "a, *"}}), "vary");
    EXPECT_EQ(not_storable("GET", get, 200, {}), "no freshness");  // nothing to serve it by, nothing to revalidate with
    EXPECT_EQ(not_storable("GET", get, 200, {{"ETag", "\"1\""}}), "");
    EXPECT_EQ(not_storable("GET", get, 302, {{"Last-Modified", format_http_date(0)}}), "no freshness");
    EXPECT_EQ(not_storable("GET", get, 302, fresh), "");
    EXPECT_EQ(not_storable("GET", get, 200, {{"Cache-Control", "max-age=60, no-store, must-understand"}}), "");
    EXPECT_EQ(not_storable("GET", get, 599, {{"Cache-Control", "max-age=60, must-understand"}}), "must-understand");
}

TEST(CacheRules, VaryAndConditionals) {
    const Fields res{{"Vary", "Accept-Language, accept-language"}};
    auto v = vary_values(res, {{"accept-language", "en ,  fr"}});
    ASSERT_TRUE(v);
    EXPECT_EQ(*v, (Fields{{"accept-language", "en, fr"}}));
    EXPECT_NE(*vary_values(res, {}), *v);                      // absent differs from present
    EXPECT_NE(*vary_values(res, {{"Accept-Language", ""}}), *vary_values(res, {}));
    EXPECT_FALSE(vary_values({{"Vary", "*"}}, {}));

    Entry e = entry({{"ETag", "\"abc\""}, {"Last-Modified", format_http_date(100)}});
    EXPECT_TRUE(not_modified({{"If-None-Match", "W/\"abc\""}}, e));
    EXPECT_TRUE(not_modified({{"If-None-Match", "\"x\", \"abc\""}}, e));
    EXPECT_FALSE(not_modified({{"If-None-Match", "\"x\""}, {"If-Modified-Since", format_http_date(200)}}, e));
    EXPECT_TRUE(not_modified({{"If-Modified-Since", format_http_date(200)}}, e));
    EXPECT_FALSE(not_modified({{"If-Modified-Since", format_http_date(50)}}, e));
    Entry no_lm = entry({{"Date", format_http_date(300)}});  // Date stands in for Last-Modified
    EXPECT_TRUE(not_modified({{"If-Modified-Since", format_http_date(300)}}, no_lm));
    EXPECT_FALSE(not_modified({{"If-Modified-Since", format_http_date(299)}}, no_lm));
    EXPECT_FALSE(not_modified({}, e));

    auto updated = updated_fields({{"ETag", "\"1\""}, {"Content-Length", "5"}, {"X-A", "old"}},
                                  {{"X-A", "new"}, {"Content-Length", "0"}, {"Cache-Control", "max-age=9"},
                                   {"ETag", "\"2\""}});
    EXPECT_EQ(updated, (Fields{{"ETag", "\"1\""}, {"Content-Length", "5"}, {"X-A", "new"}, {"Cache-Control", "max-age=9"}}));
}

class CacheStore : public ::testing::Test {
protected:
    void SetUp() override {
        dir = fs::temp_directory_path() / ("vigil-cache-test-" + std::to_string(::getpid()));
        fs::remove_all(dir);
    }
    void TearDown() override {
        std::error_code ec;
        fs::permissions(dir, fs::perms::owner_all, ec);
        fs::remove_all(dir, ec);
    }
    static Entry stored(const std::string& url, const std::string& body, Fields vary = {}) {
        Entry e = entry({{"Cache-Control", "max-age=60"}, {"Content-Type", "text/plain"}});
        e.url = url;
        e.vary = std::move(vary);
        e.body = std::make_shared<const std::string>(body);
        e.body_size = body.size();
        e.ruleset = 7;
        return e;
    }
    fs::path dir;
    Counters counters;
};

TEST_F(CacheStore, KeepsEntriesOnDiskAcrossRestartsAndDiscardsCorruptOnes) {
    {
        Store s(Options{dir.string(), 1 << 20, 1 << 20, 1 << 16}, counters);
        s.put(stored("http://a.example/1", "one"));
        s.put(stored("http://a.example/2", std::string(1000, 'x')));
        s.flush();
        EXPECT_EQ(s.entries(), 2u);
        EXPECT_GT(s.disk_bytes(), 1000u);
        EXPECT_EQ(fs::status(dir).permissions() & (fs::perms::group_all | fs::perms::others_all), fs::perms::none);
    }
    // Flip one byte of the second body on disk.
    for (const auto& f : fs::directory_iterator(dir)) {
        if (fs::file_size(f) < 1000) continue;
        std::fstream io(f.path(), std::ios::in | std::ios::out | std::ios::binary);
        io.seekp(static_cast<std::streamoff>(fs::file_size(f) - 20));
        io.put('y');
    }
    Store s(Options{dir.string(), 1 << 20, 1 << 20, 1 << 16}, counters);
    EXPECT_EQ(s.entries(), 2u);
    auto one = s.find("http://a.example/1", {});
    ASSERT_TRUE(one);
    EXPECT_EQ(*one->body, "one");
    EXPECT_EQ(one->ruleset, 7);
    EXPECT_EQ(field(one->headers, "content-type"), "text/plain");
    EXPECT_FALSE(s.find("http://a.example/2", {}));  // checksum: discarded, never served
    EXPECT_EQ(counters.cache_corrupt.load(), 1u);
    s.flush();
    EXPECT_EQ(s.entries(), 1u);
    size_t files = 0;
    for (const auto& f : fs::directory_iterator(dir)) files += f.path().extension() == ".entry";
    EXPECT_EQ(files, 1u);
}

TEST_F(CacheStore, GarbageFilesAreRemovedAtStart) {
    fs::create_directories(dir);
    std::ofstream(dir / "0123456789abcdef0123456789abcdef.entry") << "VIGILCACHE1\n99999\nshort";
    std::ofstream(dir / "x.entry.tmp") << "half written";
    Store s(Options{dir.string(), 1 << 20, 1 << 20, 1 << 16}, counters);
    EXPECT_EQ(s.entries(), 0u);
    EXPECT_EQ(counters.cache_corrupt.load(), 1u);
    EXPECT_TRUE(fs::is_empty(dir));
}

TEST_F(CacheStore, VariantsInvalidationAndLimits) {
    Store s(Options{"", 1 << 20, 4096, 2048}, counters);  // memory only
    Entry en = stored("http://a.example/v", "en", {{"accept-language", "en"}});
    en.headers.emplace_back("Vary", "Accept-Language");
    Entry fr = stored("http://a.example/v", "fr", {{"accept-language", "fr"}});
    fr.headers.emplace_back("Vary", "Accept-Language");
    s.put(en);
    s.put(fr);
    EXPECT_EQ(*s.find("http://a.example/v", {{"Accept-Language", "fr"}})->body, "fr");
    EXPECT_EQ(*s.find("http://a.example/v", {{"Accept-Language", "en"}})->body, "en");
    EXPECT_FALSE(s.find("http://a.example/v", {{"Accept-Language", "de"}}));
    s.invalidate("http://a.example/v");
    EXPECT_FALSE(s.find("http://a.example/v", {{"Accept-Language", "en"}}));
    // Too large for one object: not stored. Over the memory budget: least recently used go first.
    s.put(stored("http://a.example/big", std::string(3000, 'b')));
    EXPECT_FALSE(s.find("http://a.example/big", {}));
    s.put(stored("http://a.example/a", std::string(2000, 'a')));
    s.put(stored("http://a.example/b", std::string(2000, 'b')));
    ASSERT_TRUE(s.find("http://a.example/a", {}));  // now the most recently used
    s.put(stored("http://a.example/c", std::string(2000, 'c')));
    EXPECT_TRUE(s.find("http://a.example/a", {}));
    EXPECT_FALSE(s.find("http://a.example/b", {}));
    EXPECT_TRUE(s.find("http://a.example/c", {}));
    EXPECT_LE(s.memory_bytes(), 4096u);
    EXPECT_GE(counters.cache_evicted.load(), 1u);
}

TEST_F(CacheStore, DiskBudgetEvictsAndBodiesLeaveMemoryFirst) {
    Store s(Options{dir.string(), 8000, 3000, 4000}, counters);
    for (int i = 0; i < 4; ++i) s.put(stored("http://a.example/" + std::to_string(i), std::string(2500, char('a' + i))));
    s.flush();
    EXPECT_LE(s.disk_bytes(), 8000u);
    EXPECT_LE(s.memory_bytes(), 3000u);
    EXPECT_FALSE(s.find("http://a.example/0", {}));  // the oldest went to keep the disk budget
    auto three = s.find("http://a.example/3", {});
    ASSERT_TRUE(three);
    EXPECT_EQ(*three->body, std::string(2500, 'd'));
    auto two = s.find("http://a.example/2", {});  // read back from disk
    ASSERT_TRUE(two);
    EXPECT_EQ(*two->body, std::string(2500, 'c'));
}

TEST_F(CacheStore, UnwritableDirectoryMeansPassThrough) {
    if (::geteuid() == 0) {
        // root writes anywhere: make the directory a file instead, which nobody can write into.
        fs::create_directories(dir.parent_path());
        std::ofstream(dir) << "not a directory";
    } else {
        fs::create_directories(dir);
        fs::permissions(dir, fs::perms::owner_read | fs::perms::owner_exec);
    }
    Store s(Options{dir.string(), 1 << 20, 1 << 20, 1 << 16}, counters);
    s.put(stored("http://a.example/1", "one"));
    s.flush();
    EXPECT_EQ(counters.cache_store_errors.load(), 1u);
    EXPECT_EQ(s.entries(), 0u);
    EXPECT_FALSE(s.find("http://a.example/1", {}));
    std::error_code ec;
    fs::remove(dir, ec);
}

TEST_F(CacheStore, ReplaceKeepsTheBodyAndRewritesTheFile) {
    Store s(Options{dir.string(), 1 << 20, 1 << 20, 1 << 16}, counters);
    s.put(stored("http://a.example/r", "body"));
    auto old = s.find("http://a.example/r", {});
    Entry updated = *old;
    updated.headers = {{"Cache-Control", "max-age=999"}};
    updated.ruleset = 8;
    updated.body.reset();
    auto now = s.replace(old, updated);
    EXPECT_EQ(*now->body, "body");
    s.flush();
    Store again(Options{dir.string(), 1 << 20, 1 << 20, 1 << 16}, counters);
    auto back = again.find("http://a.example/r", {});
    ASSERT_TRUE(back);
    EXPECT_EQ(back->ruleset, 8);
    EXPECT_EQ(field(back->headers, "cache-control"), "max-age=999");
    EXPECT_EQ(*back->body, "body");
}

TEST(CacheFile, RoundTripAndTruncation) {
    Entry e = entry({{"A", "1\n2:3"}, {"B", ""}});
    e.vary = {{"x", "y"}};
    e.body = std::make_shared<const std::string>("hello");
    e.body_size = 5;
    const std::string bytes = serialize(e);
    auto back = parse(bytes, true);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->headers, e.headers);
    EXPECT_EQ(back->vary, e.vary);
    EXPECT_EQ(*back->body, "hello");
    for (size_t cut = 0; cut < bytes.size(); ++cut) EXPECT_FALSE(parse(bytes.substr(0, cut), true)) << cut;
}

}  // namespace
}  // namespace vigil::cache

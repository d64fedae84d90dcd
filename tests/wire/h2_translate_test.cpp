// The HTTP/2 request header list to HTTP/1.1 translation and its RFC 9113 §8 checks, and the
// response fields that may go on a stream.
#include "wire/h2_translate.hpp"

#include <gtest/gtest.h>

#include <boost/beast/http.hpp>

#include <random>

namespace vigil::wire {
namespace {

namespace http = boost::beast::http;
using Fields = std::vector<std::pair<std::string, std::string>>;

// Adds every field; the first error (or "").
std::string build(H2RequestHead& h, const Fields& fields, size_t limit = 65536) {
    for (const auto& [n, v] : fields) {
        std::string error;
        if (!h.add(n, v, limit, error)) return error;
    }
    return "";
}

Fields get(const std::string& path = "/a?b=1") {
    return {{":method", "GET"}, {":scheme", "https"}, {":authority", "www.example.test"}, {":path", path}};
}

TEST(H2Translate, GetBecomesAnOriginFormRequestWithHost) {
    H2RequestHead h;
    auto f = get();
    f.push_back({"user-agent", "curl/7.88"});
    f.push_back({"accept", "*/*"});
    ASSERT_EQ(build(h, f), "");
    H1Request r;
    ASSERT_FALSE(h1_request(h, true, r));
    EXPECT_EQ(r.head, "GET /a?b=1 HTTP/1.1\r\nHost: www.example.test\r\nuser-agent: curl/7.88\r\naccept: */*\r\n\r\n");
    EXPECT_EQ(r.body, H2Body::none);
}

TEST(H2Translate, BodyFramingFromContentLengthOrChunked) {
    H2RequestHead h;
    auto f = get();
    f[0].second = "POST";
    f.push_back({"content-length", "5"});
    ASSERT_EQ(build(h, f), "");
    H1Request r;
    ASSERT_FALSE(h1_request(h, false, r));
    EXPECT_NE(r.head.find("content-length: 5\r\n"), std::string::npos);
    EXPECT_EQ(r.body, H2Body::length);

    H2RequestHead c;
    f.pop_back();
    ASSERT_EQ(build(c, f), "");
    H1Request rc;
    ASSERT_FALSE(h1_request(c, false, rc));
    EXPECT_NE(rc.head.find("transfer-encoding: chunked\r\n"), std::string::npos);
    EXPECT_EQ(rc.body, H2Body::chunked);

    // A length but the stream ended with the headers: the body can never come.
    H2RequestHead e;
    f.push_back({"content-length", "5"});
    ASSERT_EQ(build(e, f), "");
    H1Request re;
    auto bad = h1_request(e, true, re);
    ASSERT_TRUE(bad);
    EXPECT_EQ(bad->status, 400);
}

TEST(H2Translate, CookieCrumbsAreJoined) {
    H2RequestHead h;
    auto f = get();
    f.push_back({"cookie", "a=1"});
    f.push_back({"cookie", "b=2"});
    ASSERT_EQ(build(h, f), "");
    H1Request r;
    ASSERT_FALSE(h1_request(h, true, r));
    EXPECT_NE(r.head.find("cookie: a=1; b=2\r\n"), std::string::npos);
}

TEST(H2Translate, FieldRulesMakeTheRequestMalformed) {
    const std::vector<std::pair<Fields, std::string>> cases = {
        {{{":method", "GET"}, {"accept", "*/*"}, {":path", "/"}}, "after a regular field"},
        {{{":method", "GET"}, {":method", "POST"}}, "repeated pseudo-header"},
        {{{":method", "GET"}, {":bogus", "1"}}, "unknown pseudo-header"},
        {{{":method", "GET"}, {"Accept", "*/*"}}, "lower-case token"},
        {{{":method", "GET"}, {"connection", "keep-alive"}}, "connection-specific"},
        {{{":method", "GET"}, {"transfer-encoding", "chunked"}}, "connection-specific"},
        {{{":method", "GET"}, {"upgrade", "websocket"}}, "connection-specific"},
        {{{":method", "GET"}, {"keep-alive", "5"}}, "connection-specific"},
        {{{":method", "GET"}, {"te", "gzip"}}, "TE other than"},
        {{{":method", "GET"}, {"x-a", "1\r\nx-b: 2"}}, "CR, LF, NUL"},
        {{{":method", "GET"}, {"x-a", std::string("1\0", 2)}}, "CR, LF, NUL"},
        {{{":method", "GET"}, {"x-a", " padded"}}, "whitespace"},
    };
    for (const auto& [fields, want] : cases) {
        H2RequestHead h;
        const std::string error = build(h, fields);
        EXPECT_NE(error.find(want), std::string::npos) << "got \"" << error << "\" for " << fields.back().first;
    }
    H2RequestHead te;
    auto f = get();
    f.push_back({"te", "trailers"});
    ASSERT_EQ(build(te, f), "");
    H1Request r;
    ASSERT_FALSE(h1_request(te, true, r));
    EXPECT_EQ(r.head.find("te:"), std::string::npos);  // hop-by-hop in HTTP/1.1: not passed on
}

TEST(H2Translate, PseudoHeaderRulesRefuseTheRequest) {
    auto refused = [](Fields f, bool end = true) {
        H2RequestHead h;
        EXPECT_EQ(build(h, f), "");
        H1Request r;
        return h1_request(h, end, r);
    };
    EXPECT_TRUE(refused({{":scheme", "https"}, {":authority", "a.test"}, {":path", "/"}}));  // no :method
    EXPECT_TRUE(refused({{":method", "GET"}, {":scheme", "http"}, {":authority", "a.test"}, {":path", "/"}}));
    EXPECT_TRUE(refused({{":method", "GET"}, {":scheme", "https"}, {":authority", "a.test"}, {":path", "a"}}));
    EXPECT_TRUE(refused({{":method", "GET"}, {":scheme", "https"}, {":authority", "a.test"}}));  // no :path
    EXPECT_TRUE(refused({{":method", "GET"}, {":scheme", "https"}, {":path", "/"}}));  // no authority, no Host
    EXPECT_TRUE(refused({{":method", "GET"}, {":scheme", "https"}, {":authority", "u@a.test"}, {":path", "/"}}));
    auto f = get();
    f.push_back({"host", "other.test"});
    auto mismatch = refused(f);
    ASSERT_TRUE(mismatch);
    EXPECT_NE(mismatch->reason.find("differs from :authority"), std::string::npos);
    f = get();
    f.push_back({"host", "WWW.Example.test"});  // the same host, another case
    EXPECT_FALSE(refused(f));
    f = get();
    f.push_back({"content-length", "1"});
    f.push_back({"content-length", "2"});
    EXPECT_TRUE(refused(f, false));
    f = get();
    f.push_back({"content-length", "1x"});
    EXPECT_TRUE(refused(f, false));
    auto connect = refused({{":method", "CONNECT"}, {":authority", "a.test:443"}});
    ASSERT_TRUE(connect);
    EXPECT_EQ(connect->status, 405);
    // Host only (no :authority) is allowed and forwarded.
    H2RequestHead h;
    ASSERT_EQ(build(h, {{":method", "GET"}, {":scheme", "https"}, {":path", "/"}, {"host", "a.test"}}), "");
    H1Request r;
    ASSERT_FALSE(h1_request(h, true, r));
    EXPECT_EQ(r.head, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
}

TEST(H2Translate, AHeaderListOverTheLimitIsRefusedWith431AndNotKept) {
    H2RequestHead h;
    auto f = get();
    for (int i = 0; i < 1000; ++i) f.push_back({"x-filler", std::string(100, 'a')});
    ASSERT_EQ(build(h, f, 16384), "");
    EXPECT_TRUE(h.too_large);
    EXPECT_LT(h.fields.size(), 200u);  // what came after the limit was dropped, not stored
    H1Request r;
    auto bad = h1_request(h, true, r);
    ASSERT_TRUE(bad);
    EXPECT_EQ(bad->status, 431);
}

// Whatever a client puts in a header list, a head that h1_request accepts is one HTTP/1.1 head
// with no smuggling room: the raw checks and Beast's parser find nothing wrong, and the request
// line and Host are the pseudo-headers' own.
TEST(H2Translate, RandomHeaderListsNeverYieldAnUnsafeHead) {
    std::mt19937 rng(29);
    const std::string alphabet = "abcXYZ019-_:;, \t\r\n\0/?#%@=\"";
    auto word = [&](size_t max) {
        std::string w;
        for (size_t n = rng() % (max + 1); n; --n) w += alphabet[rng() % alphabet.size()];
        return w;
    };
    const std::vector<std::string> names = {"accept", "cookie", "host", "content-length", "te", "connection",
                                            "transfer-encoding", "x-a", ":path", ":authority", ":method"};
    int accepted = 0;
    for (int i = 0; i < 20000; ++i) {
        H2RequestHead h;
        Fields f = get(rng() % 2 ? "/" + word(8) : word(8));
        if (rng() % 4 == 0) f[2].second = word(12);  // :authority
        if (rng() % 4 == 0) f[0].second = word(6);   // :method
        for (size_t n = rng() % 5; n; --n) f.push_back({rng() % 3 ? names[rng() % names.size()] : word(6), word(10)});
        if (!build(h, f).empty()) continue;
        H1Request r;
        if (h1_request(h, rng() % 2, r)) continue;
        ++accepted;
        EXPECT_FALSE(check_raw_head(r.head)) << r.head;
        http::request_parser<http::empty_body> p;
        boost::system::error_code ec;
        p.put(boost::asio::buffer(r.head), ec);
        ASSERT_FALSE(ec) << ec.message() << " for " << r.head;
        EXPECT_FALSE(check_request_fields(p.get().base(), 1000)) << r.head;
        EXPECT_EQ(std::string(p.get().target()), h.path);
        EXPECT_EQ(p.get().count(http::field::host), 1u);
    }
    EXPECT_GT(accepted, 300);  // the generator reaches the accepting paths, not only refusals
}

TEST(H2Translate, ResponseFieldsLoseConnectionSpecificOnes) {
    http::fields f;
    f.insert(http::field::content_type, "text/html");
    f.insert(http::field::content_length, "12");
    f.insert(http::field::connection, "close, x-hop");
    f.insert("X-Hop", "1");
    f.insert(http::field::keep_alive, "timeout=5");
    f.insert(http::field::transfer_encoding, "chunked");
    f.insert("Set-Cookie", "a=1");
    f.insert("Set-Cookie", "b=2");
    const auto out = h2_response_fields(f);
    const Fields want = {{"content-type", "text/html"}, {"content-length", "12"}, {"set-cookie", "a=1"}, {"set-cookie", "b=2"}};
    EXPECT_EQ(out, want);
}

}  // namespace
}  // namespace vigil::wire

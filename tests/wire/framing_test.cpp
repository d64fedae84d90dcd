// Request-target parsing and the framing rules that decide what may be forwarded.
#include "wire/framing.hpp"

#include <gtest/gtest.h>

#include <boost/beast/http.hpp>

namespace vigil::wire {
namespace {

namespace http = boost::beast::http;

std::optional<Rejection> check(const std::string& raw) {
    if (auto bad = check_raw_head(raw)) return bad;
    http::request_parser<http::empty_body> p;
    p.eager(false);
    boost::system::error_code ec;
    p.put(boost::asio::buffer(raw), ec);
    if (ec) return Rejection{400, ec.message()};
    return check_request_fields(p.get().base(), 100);
}

TEST(Framing, Authority) {
    auto a = parse_authority("Example.COM:443", std::nullopt);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->host, "example.com");
    EXPECT_EQ(a->port, 443);
    auto v6 = parse_authority("[2001:db8::1]:8443", std::nullopt);
    ASSERT_TRUE(v6);
    EXPECT_EQ(v6->host, "2001:db8::1");
    EXPECT_EQ(v6->host_port(), "[2001:db8::1]:8443");
    EXPECT_FALSE(parse_authority("example.com", std::nullopt));  // CONNECT needs a port
    EXPECT_EQ(parse_authority("example.com", uint16_t(80))->port, 80);
    EXPECT_FALSE(parse_authority("user@example.com:443", std::nullopt));
    EXPECT_FALSE(parse_authority("example.com:0", std::nullopt));
    EXPECT_FALSE(parse_authority("example.com:65536", std::nullopt));
    EXPECT_FALSE(parse_authority("example.com:44x", std::nullopt));
    EXPECT_FALSE(parse_authority("example.com:", std::nullopt));
    EXPECT_FALSE(parse_authority("2001:db8::1:443", std::nullopt));  // IPv6 needs brackets
    EXPECT_FALSE(parse_authority("[example.com]:443", std::nullopt));
    EXPECT_FALSE(parse_authority("exa mple.com:443", std::nullopt));
    EXPECT_FALSE(parse_authority("example.com/path:443", std::nullopt));
}

TEST(Framing, AbsoluteUrl) {
    auto u = parse_absolute_url("http://Example.com:8080/a/b?c=d#frag");
    ASSERT_TRUE(u);
    EXPECT_EQ(u->scheme, "http");
    EXPECT_EQ(u->authority.host, "example.com");
    EXPECT_EQ(u->authority.port, 8080);
    EXPECT_EQ(u->target, "/a/b?c=d");
    EXPECT_EQ(parse_absolute_url("http://example.com")->target, "/");
    EXPECT_EQ(parse_absolute_url("http://example.com?q")->target, "/?q");
    EXPECT_EQ(parse_absolute_url("https://example.com/")->authority.port, 443);
    EXPECT_FALSE(parse_absolute_url("/relative"));
    EXPECT_FALSE(parse_absolute_url("ftp://example.com/"));
    EXPECT_FALSE(parse_absolute_url("http://user:pw@example.com/"));
    EXPECT_FALSE(parse_absolute_url("http:///path"));
}

TEST(Framing, AcceptsOrdinaryRequests) {
    EXPECT_FALSE(check("GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n"));
    EXPECT_FALSE(check("POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n"));
    EXPECT_FALSE(check("POST http://a/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n"));
    EXPECT_FALSE(check("GET http://a/ HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\n\r\n"));
    EXPECT_FALSE(check("GET http://a/ HTTP/1.1\r\nHost: a\r\nX-Tab: a\tb\r\n\r\n"));
}

TEST(Framing, RejectsSmugglingShapes) {
    const char* bad[] = {
        "POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
        "POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n",
        "POST http://a/ HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n",
        "POST http://a/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n",
        "POST http://a/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
        "POST http://a/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n",
        "POST http://a/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST http://a/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n",
        "GET http://a/ HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
        "GET http://a/ HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n",
        "GET http://a/ HTTP/1.1\r\nHost: a\nX: b\r\n\r\n",
        "GET http://a/ HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",
        "GET http://a/ HTTP/1.1\r\nHost: a\r\nX: a\x01" "b\r\n\r\n",
        "GET http://a/%0d%0aX:%20y HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET http://a/ HTTP/1.1\r\nHost: a\r\nConnection: Content-Length\r\n\r\n",
        "GET http://a/ HTTP/1.1\r\nHost: a\r\nConnection: close, transfer-encoding\r\n\r\n",
    };
    for (const char* raw : bad) {
        auto r = check(raw);
        EXPECT_TRUE(r) << raw;
        if (r) {
            EXPECT_EQ(r->status, 400) << raw;
        }
    }
    const std::string with_nul("GET http://a/ HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", 44);
    ASSERT_EQ(with_nul.find('\0'), 37u);
    EXPECT_TRUE(check_raw_head(with_nul));
}

TEST(Framing, TooManyFieldsIs431) {
    std::string raw = "GET http://a/ HTTP/1.1\r\nHost: a\r\n";
    for (int i = 0; i < 100; ++i) raw += "X-" + std::to_string(i) + ": v\r\n";
    raw += "\r\n";
    auto r = check(raw);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 431);
}

TEST(Framing, HopByHop) {
    http::fields f;
    f.insert(http::field::connection, "keep-alive, X-Secret");
    f.insert("Proxy-Connection", "Upgrade");
    HopByHop h(f);
    for (const char* name : {"Connection", "Keep-Alive", "TE", "Trailer", "Transfer-Encoding", "Upgrade",
                             "Proxy-Authorization", "Proxy-Connection", "x-secret", "X-SECRET"})
        EXPECT_TRUE(h.contains(name)) << name;
    EXPECT_FALSE(h.contains("X-Other"));
    EXPECT_FALSE(h.contains("Cookie"));
    EXPECT_TRUE(h.connection_has("upgrade"));
}

TEST(Framing, ResponseFraming) {
    http::fields ok;
    ok.insert(http::field::transfer_encoding, "chunked");
    EXPECT_FALSE(check_response_fields(ok));
    http::fields bad = ok;
    bad.insert(http::field::content_length, "10");
    EXPECT_TRUE(check_response_fields(bad));
}

TEST(Framing, HostHeaderForOrigin) {
    EXPECT_EQ(host_header({"example.com", 443}, true), "example.com");
    EXPECT_EQ(host_header({"example.com", 443}, false), "example.com:443");
    EXPECT_EQ(host_header({"example.com", 80}, false), "example.com");
    EXPECT_EQ(host_header({"example.com", 8443}, true), "example.com:8443");
    EXPECT_EQ(host_header({"::1", 443}, true), "[::1]");
    EXPECT_EQ(host_header({"2001:db8::1", 8080}, false), "[2001:db8::1]:8080");
}

TEST(Framing, ConnectionBoundAuthentication) {
    EXPECT_TRUE(connection_bound_auth("NTLM TlRMTVNTUAAB"));
    EXPECT_TRUE(connection_bound_auth("negotiate YIIG"));
    EXPECT_TRUE(connection_bound_auth("Negotiate"));
    EXPECT_FALSE(connection_bound_auth("Basic dXNlcjpwYXNz"));
    EXPECT_FALSE(connection_bound_auth("Bearer abc"));
    EXPECT_FALSE(connection_bound_auth("NTL"));
    EXPECT_FALSE(connection_bound_auth(""));
}

TEST(Framing, PartialHeadsThatCanNeverCompleteAreRefusedEarly) {
    // Still incomplete and well-formed so far: wait for more.
    EXPECT_FALSE(check_partial_head("GET http://a.test/ HTTP/1.1\r\nHost: a"));
    EXPECT_FALSE(check_partial_head("GET http://a.test/ HTTP/1.1\r"));  // CR at the end: LF may follow
    EXPECT_FALSE(check_partial_head("GE"));
    EXPECT_FALSE(check_partial_head("GET / HTTP/1.0\r\n"));
    // Bare LF, bare CR, LF CR: never a valid head.
    EXPECT_TRUE(check_partial_head("GET / HTTP/1.1\nHost: a\n"));
    EXPECT_TRUE(check_partial_head("GET / HTTP/1.1\rHost: a"));
    EXPECT_TRUE(check_partial_head("GET / HTTP/1.1\n\rHost"));
    EXPECT_TRUE(check_partial_head("\n"));
    // A complete request line that cannot be one.
    EXPECT_TRUE(check_partial_head("GET / HTTP/5.6\r\nHost: a\r\n"));
    EXPECT_TRUE(check_partial_head("GET /\r\n"));  // HTTP/0.9
    EXPECT_TRUE(check_partial_head("GET\r\n"));
    EXPECT_TRUE(check_partial_head("GET  / HTTP/1.1\r\n"));
    // Incremental: what was checked is not checked again, but a CR at the old end still is.
    EXPECT_TRUE(check_partial_head("GET / HTTP/1.1\rX", 15));
    EXPECT_FALSE(check_partial_head("GET / HTTP/1.1\r\nHost: a", 20));
}

TEST(Framing, FirstChunkLineWithABareLfIsBad) {
    EXPECT_TRUE(first_chunk_line_bad("4\nabcd\n0\n\n"));
    EXPECT_TRUE(first_chunk_line_bad("\n"));
    EXPECT_TRUE(first_chunk_line_bad("4;a=b\nabcd\r\n"));
    EXPECT_FALSE(first_chunk_line_bad("4\r\nab\ncd\r\n0\r\n\r\n"));  // a LF inside chunk data is data
    EXPECT_FALSE(first_chunk_line_bad("4"));                         // not there yet
    EXPECT_FALSE(first_chunk_line_bad(""));
}

TEST(Framing, OriginsAreOfferedOnlyDecodableCodings) {
    EXPECT_EQ(decodable_codings("gzip, deflate, br, zstd"), "gzip, deflate, br");
    EXPECT_EQ(decodable_codings("zstd;q=1.0, br;q=0.9, *;q=0.1"), "br;q=0.9");
    EXPECT_EQ(decodable_codings("zstd"), "");
    EXPECT_EQ(decodable_codings(""), "");
    EXPECT_EQ(decodable_codings(" GZIP ,identity"), "GZIP, identity");
}

TEST(Framing, BareLfAnywhere) {
    EXPECT_TRUE(has_bare_lf("0\r\nX: a\n"));
    EXPECT_TRUE(has_bare_lf("\n"));
    EXPECT_FALSE(has_bare_lf("4\r\nabcd\r\n"));
    EXPECT_FALSE(has_bare_lf("4\r"));
    EXPECT_FALSE(has_bare_lf(""));
}

TEST(Framing, ListFieldsJoinEveryFieldLine) {
    http::fields f;
    f.insert(http::field::content_encoding, "gzip");
    f.insert(http::field::content_type, "text/plain");
    f.insert(http::field::content_encoding, " gzip ");
    f.insert(http::field::content_encoding, "");
    EXPECT_EQ(field_list(f, http::field::content_encoding), "gzip, gzip");
    EXPECT_EQ(field_list(f, http::field::vary), "");
}

TEST(Framing, LookAlikesOfFramingHeadersAreRefused) {
    for (const char* name : {"Transfer_Encoding", "transfer_encoding", "Content_Length", "Proxy_Connection",
                             "Connection_", "Keep_Alive"}) {
        http::fields f;
        f.insert(name, "x");
        if (std::string(name) == "Connection_") {
            EXPECT_FALSE(check_request_fields(f, 100)) << name;  // not a look-alike: a different name
        } else {
            EXPECT_TRUE(check_request_fields(f, 100)) << name;
        }
    }
    http::fields ok;
    ok.insert("X_Custom_Header", "x");
    EXPECT_FALSE(check_request_fields(ok, 100));
}

}  // namespace
}  // namespace vigil::wire

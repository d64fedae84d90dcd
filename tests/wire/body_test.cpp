// Request heads and body relay on Beast's test stream: fragmentation forced with read_size,
// held bytes, signature matches before and after the head went out, short bodies. No sockets.
#include "wire/messages.hpp"

#include <gtest/gtest.h>

#include "tests/support/run_awaitable.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/beast/_experimental/test/stream.hpp>

#include "inspect/ruleset.hpp"

namespace vigil::wire {
namespace {

namespace test = boost::beast::test;
using namespace std::chrono_literals;

// Runs one coroutine on `ioc` to its end.
using test_support::run;

struct Wire : ::testing::Test {
    net::io_context ioc;
    Config cfg;
    Counters counters;
    Context cx{cfg, counters};

    HeadRead read_head(test::stream& s, beast::flat_buffer& buf) {
        return run(ioc, read_request_head(s, buf, cx, HeadDeadline::fresh(10s)));
    }
};

std::shared_ptr<const inspect::RuleSet> rules_with(const std::string& target, const std::string& pattern) {
    rules::RuleData d;
    d.signatures = {{"test-sig", target, pattern, "block", "high", "", "", true}};
    return inspect::RuleSet::compile(d, {});
}

TEST_F(Wire, HeadArrivingOneByteAtATimeIsParsed) {
    test::stream s(ioc);
    s.read_size(1);
    const std::string head = "GET http://origin.test/a?b HTTP/1.1\r\nHost: origin.test\r\nX-A: 1\r\n\r\n";
    s.append(head);
    beast::flat_buffer buf;
    auto got = read_head(s, buf);
    ASSERT_EQ(got.status, HeadRead::ok);
    EXPECT_EQ(got.parser->get().method(), http::verb::get);
    EXPECT_EQ(got.parser->get().target(), "http://origin.test/a?b");
    EXPECT_EQ(got.parser->get()["X-A"], "1");
    EXPECT_EQ(counters.bytes_in.load(), head.size());
    EXPECT_EQ(s.nread(), head.size());  // one byte per read, as asked
}

TEST_F(Wire, HeadThatCanNeverCompleteIsRefusedWithoutWaiting) {
    test::stream s(ioc);
    test::stream peer(ioc);
    s.connect(peer);  // the client stays connected: only an early refusal ends the read
    s.read_size(3);
    s.append("GET / HTTP/1.1\nHost: x\n");
    beast::flat_buffer buf;
    auto got = read_head(s, buf);
    ASSERT_EQ(got.status, HeadRead::rejected);
    EXPECT_EQ(got.rejection.status, 400);
}

TEST_F(Wire, OversizedHeadIs431AndCounted) {
    cfg.max_header_bytes = 1024;
    test::stream s(ioc);
    s.append("GET http://o.test/ HTTP/1.1\r\nX-Big: " + std::string(2000, 'a') + "\r\n\r\n");
    beast::flat_buffer buf;
    auto got = read_head(s, buf);
    ASSERT_EQ(got.status, HeadRead::rejected);
    EXPECT_EQ(got.rejection.status, 431);
    EXPECT_EQ(counters.header_too_large.load(), 1u);
    const Failure f = head_failure(counters, got.rejection, "");
    EXPECT_EQ(page_for(f).status, 431);
    EXPECT_EQ(counters.bad_request.load(), 1u);
}

// The request body from `client` to a fresh origin stream; returns what the origin received.
struct Upload {
    RelayError result = RelayError::none;
    std::string origin_got;
};

Upload upload(Wire& w, const std::string& wire_bytes, size_t read_size, BodyOptions opts) {
    test::stream client(w.ioc);
    client.read_size(read_size);
    client.append(wire_bytes);
    client.close_remote();  // what was appended is all there is
    beast::flat_buffer buf;
    auto head = w.read_head(client, buf);
    EXPECT_EQ(head.status, HeadRead::ok);
    test::stream origin(w.ioc);
    test::stream origin_peer(w.ioc);
    origin.connect(origin_peer);
    http::request<http::buffer_body> out;
    out.method(head.parser->get().method());
    out.target("/up");
    out.version(11);
    if (auto len = head.parser->content_length()) out.content_length(*len);
    else out.chunked(true);
    Upload u;
    u.result = run(w.ioc, relay_body(client, buf, *head.parser, origin, out, w.cx, opts));
    u.origin_got = std::string(origin_peer.str());
    return u;
}

TEST_F(Wire, RequestBodyIsForwardedWholeWhateverTheFragmentation) {
    const std::string body(200'000, 'x');
    for (size_t rs : {size_t(1) << 20, size_t(7)}) {
        auto u = upload(*this, "POST http://o.test/ HTTP/1.1\r\nContent-Length: 200000\r\n\r\n" + body, rs, {});
        EXPECT_EQ(u.result, RelayError::none);
        ASSERT_NE(u.origin_got.find("\r\n\r\n"), std::string::npos);
        EXPECT_EQ(u.origin_got.substr(u.origin_got.find("\r\n\r\n") + 4), body) << "read_size " << rs;
    }
}

TEST_F(Wire, ChunkedUploadIsReframedIntact) {
    auto u = upload(*this, "POST http://o.test/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
                    3, {});
    EXPECT_EQ(u.result, RelayError::none);
    // Re-chunked as it was read (3 bytes at a time here): what counts is the body it carries.
    http::request_parser<http::string_body> parsed;
    parsed.eager(true);
    error_code ec;
    for (size_t at = 0; !ec && !parsed.is_done() && at < u.origin_got.size();)
        at += parsed.put(net::buffer(u.origin_got.data() + at, u.origin_got.size() - at), ec);
    ASSERT_FALSE(ec) << ec.message() << "\n" << u.origin_got;
    ASSERT_TRUE(parsed.is_done()) << u.origin_got;
    EXPECT_EQ(parsed.get().body(), "hello world");
}

TEST_F(Wire, MatchWithinHeldBytesSendsNothing) {
    auto rules = rules_with("request_body", "EICAR-[A-Z]+-TEST");
    auto scanner = rules->scan_body(inspect::Target::request_body, "");
    BodyOptions o;
    o.scanner = scanner.get();
    o.hold = 64 * 1024;
    const std::string body = std::string(1000, 'a') + "EICAR-STANDARD-TEST" + std::string(1000, 'b');
    auto u = upload(*this, "POST http://o.test/ HTTP/1.1\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body,
                    100, o);
    EXPECT_EQ(u.result, RelayError::blocked_before_head);
    EXPECT_EQ(u.origin_got, "");  // not even the head
}

TEST_F(Wire, MatchPastHeldBytesCutsTheTransferBeforeTheMatch) {
    auto rules = rules_with("request_body", "EICAR-[A-Z]+-TEST");
    auto scanner = rules->scan_body(inspect::Target::request_body, "");
    BodyOptions o;
    o.scanner = scanner.get();
    o.hold = 1024;
    const std::string body = std::string(300'000, 'a') + "EICAR-STANDARD-TEST";
    auto u = upload(*this, "POST http://o.test/ HTTP/1.1\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body,
                    1 << 20, o);
    EXPECT_EQ(u.result, RelayError::blocked_after_head);
    EXPECT_NE(u.origin_got.find("Content-Length: 300019"), std::string::npos);  // the head went out
    EXPECT_EQ(u.origin_got.find("EICAR"), std::string::npos);                   // the match did not
}

TEST_F(Wire, BadChunkFramingIsMalformedAndHeldBack) {
    BodyOptions o;
    o.hold = 64 * 1024;
    auto u = upload(*this, "POST http://o.test/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 5, o);
    EXPECT_EQ(u.result, RelayError::malformed_before_head);
    EXPECT_EQ(u.origin_got, "");
}

TEST_F(Wire, ResponseShorterThanItsLengthIsAReadErrorWithTheCause) {
    test::stream origin(ioc);
    origin.append("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + std::string(40, 'z'));
    origin.close_remote();
    beast::flat_buffer obuf;
    std::optional<http::response_parser<http::buffer_body>> rp;
    std::string error;
    ASSERT_EQ(run(ioc, read_response_head(origin, obuf, rp, false, cx, error)), ResponseHead::ok);
    test::stream client(ioc);
    test::stream client_peer(ioc);
    client.connect(client_peer);
    http::response<http::buffer_body> res{http::status::ok, 11};
    res.content_length(100);
    error_code cut;
    BodyOptions o;
    o.read_error = &cut;
    EXPECT_EQ(run(ioc, relay_body(origin, obuf, *rp, client, res, cx, o)), RelayError::read);
    EXPECT_EQ(cut, net::error::eof);
    EXPECT_NE(client_peer.str().find(std::string(40, 'z')), std::string::npos);  // not held: streamed as it came
    const TransferFailure t = classify_transfer_failure(RelayError::read, cut, false, counters);
    EXPECT_EQ(t.failure.name(), "origin_short_body");
    EXPECT_FALSE(t.page_possible);
    EXPECT_EQ(counters.upstream_bad_response.load(), 1u);
}

TEST_F(Wire, InterimResponsesAreSkipped) {
    test::stream origin(ioc);
    origin.read_size(2);
    origin.append("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n");
    beast::flat_buffer obuf;
    std::optional<http::response_parser<http::buffer_body>> rp;
    std::string error;
    ASSERT_EQ(run(ioc, read_response_head(origin, obuf, rp, false, cx, error)), ResponseHead::ok);
    EXPECT_EQ(rp->get().result_int(), 204);
}

TEST(FailureTable, EveryCodeHasAStatusTitleAndName) {
    for (int i = 0; i <= static_cast<int>(Fail::compress_failed); ++i) {
        const FailureKind& k = kind(static_cast<Fail>(i));
        EXPECT_GE(k.status, 400);
        EXPECT_NE(std::string(k.title), "");
        if (static_cast<Fail>(i) != Fail::origin_certificate) {
            EXPECT_NE(std::string(k.code), "");
        }
    }
    Counters c;
    Failure f = fail(c, Fail::origin_certificate, "the origin's certificate has expired", "a.test:443");
    f.subcode = "expired";
    EXPECT_EQ(c.upstream_cert_error.load(), 1u);
    const PageInfo p = page_for(f, 7);
    EXPECT_EQ(p.status, 502);
    EXPECT_EQ(p.code, "expired");
    EXPECT_EQ(p.conn_id, 7u);
    EXPECT_EQ(p.action, PageAction::error);
    EXPECT_EQ(page_for(fail(c, Fail::port_not_allowed, "no")).action, PageAction::refuse);
    EXPECT_EQ(c.connect_denied.load(), 1u);
}

}  // namespace
}  // namespace vigil::wire

// An HTTP/2 stream as the relay sees it (wire/h2_stream.hpp): reads give what the connection
// pushed, writes are parsed back into a head and body bytes for DATA frames, with the bounds,
// deadlines and resets the relay relies on.
#include "wire/h2_stream.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

namespace vigil::wire {
namespace {

struct Sink : H2Sink {
    size_t consumed_bytes = 0;
    int heads = 0, bodies = 0;
    void consumed(int32_t, size_t n) override { consumed_bytes += n; }
    void head_ready(int32_t) override { ++heads; }
    void body_ready(int32_t) override { ++bodies; }
};

template <class F>
void run(net::io_context& io, F f) {
    bool done = false;
    net::co_spawn(io, [&]() -> net::awaitable<void> {
        co_await f();
        done = true;
    }, [](std::exception_ptr e) { if (e) std::rethrow_exception(e); });
    io.run();
    io.restart();
    ASSERT_TRUE(done);
}

TEST(H2Stream, ReadsWhatTheConnectionPushedThenEndAndReturnsTheWindow) {
    net::io_context io;
    Sink sink;
    H2Stream st(io.get_executor(), sink, 1, false);
    st.push_request("GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0);
    st.push_data("hello", true);
    st.push_request("0\r\n\r\n", 0);
    st.end_request();
    run(io, [&]() -> net::awaitable<void> {
        std::string got(256, '\0');
        auto [ec, n] = co_await st.async_read_some(net::buffer(got), io::use_nothrow);
        EXPECT_FALSE(ec);
        got.resize(n);
        EXPECT_EQ(got, "GET / HTTP/1.1\r\nHost: a\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
        char more[8];
        auto [ec2, m] = co_await st.async_read_some(net::buffer(more), io::use_nothrow);
        EXPECT_EQ(ec2, net::error::eof);
        EXPECT_EQ(m, 0u);
    });
    EXPECT_EQ(sink.consumed_bytes, 5u);  // the body's bytes, not the framing
}

TEST(H2Stream, AResponseIsParsedIntoAHeadAndDeChunkedBody) {
    net::io_context io;
    Sink sink;
    H2Stream st(io.get_executor(), sink, 1, false);
    run(io, [&]() -> net::awaitable<void> {
        const std::string res =
            "HTTP/1.1 100 Continue\r\n\r\n"
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
            "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        auto [ec, n] = co_await net::async_write(st, net::buffer(res), io::use_nothrow);
        EXPECT_FALSE(ec);
        EXPECT_EQ(n, res.size());
    });
    ASSERT_TRUE(st.has_head());
    EXPECT_EQ(sink.heads, 1);  // the interim 100 was dropped
    EXPECT_EQ(st.message().status, 200u);
    EXPECT_EQ(st.message().fields[http::field::content_type], "text/plain");
    EXPECT_TRUE(st.finish());
    uint8_t out[64];
    bool eof = false;
    const size_t n = st.take_body(out, sizeof out, eof);
    EXPECT_EQ(std::string(reinterpret_cast<char*>(out), n), "abcde");
    EXPECT_TRUE(eof);
}

TEST(H2Stream, AWriteWaitsWhileTheClientTakesNothingAndFailsAtItsDeadline) {
    net::io_context io;
    Sink sink;
    H2Stream st(io.get_executor(), sink, 1, false);
    const std::string big(H2Stream::kOutLimit * 2, 'x');
    run(io, [&]() -> net::awaitable<void> {
        const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(big.size()) + "\r\n\r\n";
        co_await net::async_write(st, net::buffer(head), io::use_nothrow);
        st.expires_after(std::chrono::milliseconds(50));
        auto [ec, n] = co_await net::async_write(st, net::buffer(big), io::use_nothrow);
        EXPECT_EQ(ec, boost::beast::error::timeout);
        EXPECT_LE(n, H2Stream::kOutLimit);  // never more than the bound waits in the stream
    });
    EXPECT_TRUE(st.deadline_passed());
}

TEST(H2Stream, AResetFailsThePendingRead) {
    net::io_context io;
    Sink sink;
    H2Stream st(io.get_executor(), sink, 1, false);
    run(io, [&]() -> net::awaitable<void> {
        net::post(io, [&] { st.reset(); });
        char buf[8];
        auto [ec, n] = co_await st.async_read_some(net::buffer(buf), io::use_nothrow);
        EXPECT_EQ(ec, net::error::connection_reset);
        EXPECT_EQ(n, 0u);
    });
    EXPECT_TRUE(st.is_reset());
}

TEST(H2Stream, AnOriginStreamParsesTheRequestAndEndsWithIt) {
    net::io_context io;
    Sink sink;
    H2OriginStream st(io.get_executor(), sink, 7, false);
    run(io, [&]() -> net::awaitable<void> {
        const std::string req = "POST /up?x=1 HTTP/1.1\r\nHost: o.test\r\nContent-Length: 4\r\n\r\nbody";
        co_await net::async_write(st, net::buffer(req), io::use_nothrow);
    });
    EXPECT_EQ(st.message().method_string, "POST");
    EXPECT_EQ(st.message().target, "/up?x=1");
    EXPECT_EQ(st.message().fields[http::field::host], "o.test");
    uint8_t out[16];
    bool eof = false;
    const size_t n = st.take_body(out, sizeof out, eof);
    EXPECT_EQ(std::string(reinterpret_cast<char*>(out), n), "body");
    EXPECT_TRUE(eof);  // the request is complete: END_STREAM with the last DATA frame
}

}  // namespace
}  // namespace vigil::wire

// Internal: reading a client's request head — deadlines (CancelAt, HeadDeadline), parking an
// idle kept-alive connection, early refusal of heads that can never complete, and the checks
// before anything is forwarded. Generic over plain and TLS client streams.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "wire/context.hpp"
#include "wire/failure.hpp"
#include "wire/framing.hpp"

namespace vigil::wire {

namespace http = beast::http;
using RequestParser = http::request_parser<http::buffer_body>;

// A deadline that cancels a socket's pending operations and leaves it open — unlike the
// stream's own timer, which closes the socket — for deadlines after which Vigil still answers
// (408). The timer's handler may already be queued when the operation completes (or the
// session is destroyed): it acts only while armed, which fired() and the destructor end.
class CancelAt {
public:
    CancelAt() = default;
    CancelAt(const CancelAt&) = delete;
    CancelAt& operator=(const CancelAt&) = delete;
    ~CancelAt() { disarm(); }

    template <class Executor, class Stream>
    void arm(Executor ex, std::chrono::steady_clock::time_point when, Stream& s) {
        disarm();
        state_ = std::make_shared<State>();
        timer_.emplace(ex, when);
        timer_->async_wait([st = state_, &s](error_code e) {
            if (e || !st->armed) return;
            st->fired = true;
            cancel_pending(s);
        });
    }
    // After the operation: whether it ended because the deadline passed. A timer that fired just
    // after the operation completed with bytes does not count: the bytes do.
    bool fired(const error_code& op_result) {
        const bool f = state_ && state_->fired && op_result == net::error::operation_aborted;
        disarm();
        return f;
    }

private:
    struct State {
        bool armed = true, fired = false;
    };
    void disarm() {
        if (!state_) return;
        state_->armed = false;
        if (timer_) timer_->cancel();
    }
    std::shared_ptr<State> state_;
    std::optional<net::steady_timer> timer_;
};

struct HeadRead {
    // idle: nothing arrived within the wait (closed quietly, as after keep-alive). A head that
    // started but missed its deadline is `rejected` with 408.
    // parked: nothing arrived by HeadDeadline::park; the caller lets go of what an idle
    // connection need not hold, then waits on.
    enum Status { ok, closed, idle, parked, rejected } status = closed;
    std::unique_ptr<RequestParser> parser;
    Rejection rejection;
};

// When a request head must be complete. `first_byte` bounds the wait for its first byte (the
// connection's whole header_read for a new connection; timeouts.idle between kept-alive
// requests); from the first byte on, the whole head must arrive within `head` — a deadline,
// not a per-read idle timer, so a client trickling one byte at a time cannot hold the
// connection open (slowloris).
struct HeadDeadline {
    std::chrono::steady_clock::time_point first_byte;
    std::chrono::seconds head;
    std::optional<std::chrono::steady_clock::time_point> park;  // before first_byte: return `parked` then
    bool lean = false;  // parked: wait with a small buffer
    // A new connection: one deadline from now for everything (the first byte included).
    static HeadDeadline fresh(std::chrono::seconds header_read) {
        return {std::chrono::steady_clock::now() + header_read, std::chrono::seconds(0), std::nullopt, false};
    }
    // A kept-alive connection: idle for its next request, then header_read for the head.
    static HeadDeadline kept_alive(std::chrono::seconds idle, std::chrono::seconds header_read) {
        return {std::chrono::steady_clock::now() + idle, header_read, std::nullopt, false};
    }
};

// What the bytes buffered so far say: a whole head (`head_len` bytes, empty lines before it
// dropped), a head that can never complete or is too large, or read more. `scanned`: how far
// earlier calls looked (kept between calls, so a head arriving byte by byte is not rescanned).
struct HeadScan {
    enum State { more, complete, rejected } state = more;
    size_t head_len = 0;
    Rejection rejection;
};
HeadScan scan_head(beast::flat_buffer& buf, size_t& scanned, size_t limit, Counters& counters);

// Checks the raw bytes and the framing of a whole head and parses it (the body, if any, is
// left in `buf` for the relay to stream).
HeadRead parse_head(beast::flat_buffer& buf, size_t head_len, Context cx);

// A read that ended before the head did: closed, quiet (idle), or a started head past its
// deadline (408).
HeadRead head_read_ended(const error_code& ec, bool started, const HeadDeadline& when, Context cx);

// Reads one request head into `buf` (which may already hold bytes), under the deadlines of
// `when`, and parses it.
template <class Stream>
net::awaitable<HeadRead> read_request_head(Stream& s, beast::flat_buffer& buf, Context cx, HeadDeadline when) {
    const size_t limit = cx.cfg.max_header_bytes;
    // The deadline in force: till the first byte, then (kept-alive) header_read from it.
    auto deadline = when.first_byte;
    bool started = buf.size() > 0;
    if (started && when.head.count() > 0) deadline = std::chrono::steady_clock::now() + when.head;
    for (size_t scanned = 0;;) {
        const HeadScan scan = scan_head(buf, scanned, limit, cx.counters);
        if (scan.state == HeadScan::complete) co_return parse_head(buf, scan.head_len, cx);
        if (scan.state == HeadScan::rejected) co_return HeadRead{HeadRead::rejected, nullptr, scan.rejection};
        // Waiting for a first byte, the stream's own timer closes a silent connection. Once a head
        // has started, the stream's timer would close the socket before a 408 could be written:
        // a separate timer cancels the read instead (only for heads that take more than one read).
        const bool parking = !started && when.park && *when.park < deadline;
        CancelAt guard;
        if (started || parking) {
            guard.arm(co_await net::this_coro::executor, parking ? *when.park : deadline, s);
            expire_at(s, deadline + std::chrono::seconds(5));  // a backstop only
        } else {
            expire_at(s, deadline);
        }
        // 4 KiB at first (a browser's head is 0.5-2 KiB), more only for a head that needs it: an
        // idle connection's buffer is small, and so is what it leaves in the heap once freed.
        // A parked connection (its buffer let go) waits with 512 bytes.
        const size_t have = buf.size();
        const size_t want = when.lean && buf.capacity() == 0 ? 512 : have < 4096 ? 4096 - have : 16384;
        auto [ec, n] = co_await s.async_read_some(buf.prepare(std::min<size_t>(limit + 4 - have, want)), use_nothrow);
        const bool fired = guard.fired(ec);
        if (fired && parking) co_return HeadRead{HeadRead::parked};
        if (fired) ec = beast::error::timeout;
        if (ec) co_return head_read_ended(ec, started, when, cx);
        if (!started && when.head.count() > 0) deadline = std::chrono::steady_clock::now() + when.head;
        started = true;
        buf.commit(n);
        count(cx.counters.bytes_in, n);
    }
}

// A kept-alive connection quiet this long is parked (see next_request_head).
inline constexpr std::chrono::seconds kParkAfter{1};

// The next request head on a client connection: the first under header_read, later ones under
// timeouts.idle then header_read. A kept-alive connection still quiet after kParkAfter is
// parked first: `on_park` lets go of its origin connection and buffers (an idle browser
// connection then costs a few KiB, not two TLS connections' worth), and the wait goes on.
template <class Stream, class OnPark>
net::awaitable<HeadRead> next_request_head(Stream& s, beast::flat_buffer& buf, Context cx, bool first, OnPark on_park) {
    if (first) co_return co_await read_request_head(s, buf, cx, HeadDeadline::fresh(cx.cfg.header_read));
    auto when = HeadDeadline::kept_alive(cx.cfg.idle, cx.cfg.header_read);
    if (buf.size() == 0) {  // nothing pipelined
        auto parking = when;
        parking.park = std::chrono::steady_clock::now() + kParkAfter;
        auto head = co_await read_request_head(s, buf, cx, parking);
        if (head.status != HeadRead::parked) co_return head;
        count(cx.counters.parked);
        buf.shrink_to_fit();
        on_park();
        when.lean = true;
    }
    co_return co_await read_request_head(s, buf, cx, when);
}

// A refused head as a failure (counted: a 408 was counted when its deadline passed).
inline Failure head_failure(Counters& counters, const Rejection& r, std::string where) {
    const Fail code = r.status == 408   ? Fail::header_timeout
                      : r.status == 431 ? Fail::header_too_large
                      : r.status == 405 ? Fail::method_not_allowed
                                        : Fail::bad_request;
    return fail(counters, code, r.reason, std::move(where));
}

}  // namespace vigil::wire

// Reading a message body one piece at a time for the body relay (body.hpp): what the relay
// does besides moving bytes (BodyOptions), the request body's minimum rate, the cache's copy,
// and bandwidth pacing.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "inspect/ruleset.hpp"
#include "io/rate.hpp"
#include "wire/compress.hpp"
#include "wire/context.hpp"
#include "wire/framing.hpp"
#include "wire/head_read.hpp"  // CancelAt

namespace vigil::wire {

namespace http = beast::http;

// Waits as long as the connection's bandwidth limits ask after moving n bytes in direction d
// (a timer: the worker serves other connections meanwhile).
inline net::awaitable<void> pace(Throttle* t, Throttle::Direction d, size_t n, Context cx) {
    if (!t || !t->limited() || n == 0) co_return;
    const auto wait = t->take(d, n);
    if (wait <= std::chrono::nanoseconds(0)) co_return;
    count(cx.counters.throttled);
    count(cx.counters.throttled_ms, static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(wait).count()));
    net::steady_timer timer(co_await net::this_coro::executor, wait);
    co_await timer.async_wait(use_nothrow);
}

// A minimum rate for a request body: at least `min_bytes` in every `window` (timeouts.body_stall,
// limits.body_stall_bytes); a body that falls below it is answered 408 (`stalled`), instead of
// holding the connection and an origin connection until timeouts.io.
struct BodyStall {
    std::chrono::seconds window;
    size_t min_bytes;
    std::chrono::steady_clock::time_point window_end{};
    size_t in_window = 0;
    void start() { window_end = std::chrono::steady_clock::now() + window; }
    void add(size_t n) {
        in_window += n;
        if (in_window < min_bytes) return;
        in_window = 0;
        start();
    }
};

// A copy of a body as it was read, for the cache: up to `limit` bytes, then given up.
// `complete` runs once the whole body has been read and scanned, before its last bytes are
// written: a client that has the whole response and asks again finds it stored.
struct BodyCapture {
    std::string bytes;
    size_t limit = 0;
    bool overflow = false;
    std::function<void()> complete;
    void add(std::string_view piece) {
        if (overflow) return;
        if (bytes.size() + piece.size() > limit) {
            overflow = true;
            std::string().swap(bytes);
        } else {
            bytes.append(piece);
        }
    }
};

// What relay_body does besides moving bytes; every part optional.
struct BodyOptions {
    inspect::BodyScanner* scanner = nullptr;  // scans every byte before it is forwarded
    size_t hold = 0;                          // bytes held back (head included) until scanned
    int64_t* tx_bytes = nullptr;              // the audit record's byte count for this side
    Throttle* throttle = nullptr;             // the client's bandwidth limits
    Compressor* compress = nullptr;           // compresses what is forwarded (responses)
    BodyCapture* capture = nullptr;           // keeps what was read (responses to be cached)
    error_code* read_error = nullptr;         // why reading the body ended early (RelayError::read*)
    BodyStall* stall = nullptr;               // request bodies: the minimum rate
    // Set when the first bytes go out, if not set before (the transaction's time to first byte).
    std::chrono::steady_clock::time_point* first_write = nullptr;
};

// How reading the next piece of a body ended: `closed` (the sender went away, read_error says
// how), `malformed` (the body broke HTTP framing), `stalled` (slower than BodyStall allows).
enum class ReadStatus { ok, closed, malformed, stalled };

// Reads a message body one piece at a time into the relay's buffer, counting what it reads and
// pacing it under the connection's bandwidth limits.
template <class In, bool isRequest>
class BodyReader {
public:
    BodyReader(In& in, beast::flat_buffer& buf, http::parser<isRequest, http::buffer_body>& p, Context cx,
               const BodyOptions& o)
        : in_(in), buf_(buf), p_(p), cx_(cx), o_(o) {
        // A response body of known length is read straight into the relay buffer (after the
        // bytes that came with the head): no copy through the read buffer and the parser, and
        // one stream operation per read instead of Beast's three. The parser sees only the
        // head; `left_` is what is still to come. Bytes past the body stay in `buf` or the
        // stream (the origin connection is then not clean: OriginConnection::clean checks both).
        if (!isRequest && !p.is_done() && !p.chunked() && p.content_length()) {
            if (auto r = p.content_length_remaining()) left_ = *r;
        }
    }
    bool done() const { return left_ ? *left_ == 0 : p_.is_done(); }

    // The next piece into `into` (at most `cap` bytes): how it went and how many bytes came.
    // Not a coroutine itself: it hands over the one that reads.
    net::awaitable<std::pair<ReadStatus, size_t>> read(char* into, size_t cap) {
        if (o_.throttle) cap = o_.throttle->chunk(kDirection, cap);
        return left_ ? read_known_length(into, cap) : read_parsed(into, cap);
    }

private:
    static constexpr auto kDirection = isRequest ? Throttle::from_client : Throttle::to_client;

    net::awaitable<std::pair<ReadStatus, size_t>> read_known_length(char* into, size_t cap) {
        cap = static_cast<size_t>(std::min<std::uint64_t>(cap, *left_));
        std::size_t n = 0;
        error_code ec;
        if (buf_.size()) {  // read with the head
            n = net::buffer_copy(net::buffer(into, cap), buf_.data());
            buf_.consume(n);
        } else {
            expire_after(in_, cx_.cfg.io);
            std::tie(ec, n) = co_await in_.async_read_some(net::buffer(into, cap), use_nothrow);
        }
        *left_ -= n;
        if (ec && n == 0 && o_.read_error) *o_.read_error = ec;
        if (o_.throttle) co_await pace(o_.throttle, kDirection, n, cx_);
        // Closed before the end: like Beast's partial_message.
        co_return std::pair{ec && n == 0 ? ReadStatus::closed : ReadStatus::ok, n};
    }

    net::awaitable<std::pair<ReadStatus, size_t>> read_parsed(char* into, size_t cap) {
        p_.get().body().data = into;
        p_.get().body().size = cap;
        CancelAt stalled;
        if (o_.stall) stalled.arm(co_await net::this_coro::executor, o_.stall->window_end, in_);
        expire_after(in_, cx_.cfg.io);
        // A chunked request body is read one socket read at a time, so that what Beast leaves
        // unparsed can be looked at: unless the body buffer is full, that is a partial chunk
        // line, CRLF or trailer, where a bare LF means framing Beast would wait on for ever
        // (it looks for a CRLF) — refused now instead.
        const bool chunked_request = isRequest && p_.chunked();
        auto [ec, n] = chunked_request ? co_await http::async_read_some(in_, buf_, p_, use_nothrow)
                                       : co_await http::async_read(in_, buf_, p_, use_nothrow);
        if (o_.stall && stalled.fired(ec)) co_return std::pair{ReadStatus::stalled, size_t(0)};
        if (isRequest) {
            count(cx_.counters.bytes_in, n);
            if (o_.tx_bytes) *o_.tx_bytes += static_cast<int64_t>(n);
        }
        if (chunked_request && !ec && !p_.is_done() &&
            has_bare_lf({static_cast<const char*>(buf_.data().data()), buf_.size()}))
            co_return std::pair{ReadStatus::malformed, size_t(0)};
        if (ec == http::error::need_buffer) ec = {};
        const bool framing = ec && ec.category() == http::make_error_code(http::error::end_of_stream).category() &&
                             ec != http::error::end_of_stream && ec != http::error::partial_message;
        const ReadStatus status = !ec ? ReadStatus::ok : framing ? ReadStatus::malformed : ReadStatus::closed;
        if (status == ReadStatus::closed && o_.read_error) *o_.read_error = ec;
        const size_t got = cap - p_.get().body().size;
        if (o_.stall) o_.stall->add(got);
        if (o_.throttle) co_await pace(o_.throttle, kDirection, got, cx_);  // no coroutine frame when unlimited
        co_return std::pair{status, got};
    }

    In& in_;
    beast::flat_buffer& buf_;
    http::parser<isRequest, http::buffer_body>& p_;
    Context cx_;
    const BodyOptions& o_;
    std::optional<std::uint64_t> left_;
};

}  // namespace vigil::wire

// The streaming body relay, generic over the stream types (plain TCP, TLS, or Beast's test
// stream in unit tests): a body moves one buffer at a time through its filters — scan and hold,
// cache copy, compression, throttle. Pages, response heads and pumps are in messages.hpp;
// request heads in head_read.hpp.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "inspect/ruleset.hpp"
#include "io/rate.hpp"
#include "wire/compress.hpp"
#include "wire/context.hpp"
#include "wire/failure.hpp"
#include "wire/framing.hpp"
#include "wire/head_read.hpp"
#include "wire/pages.hpp"

namespace vigil::wire {

namespace http = beast::http;

// A 64 KiB relay buffer from a small per-thread free list: a body relay needs one while it
// runs, and allocating (and zeroing) a fresh one per message was 13% of a keep-alive
// request's CPU. Not zeroed; at most kKeep buffers are kept per thread.
class RelayBuffer {
public:
    static constexpr size_t kSize = 64 * 1024;
    RelayBuffer() {
        auto& free = free_list();
        if (free.empty()) {
            buf_.reset(new char[kSize]);
        } else {
            buf_ = std::move(free.back());
            free.pop_back();
        }
    }
    ~RelayBuffer() {
        auto& free = free_list();
        if (free.size() < kKeep) free.push_back(std::move(buf_));
    }
    RelayBuffer(const RelayBuffer&) = delete;
    RelayBuffer& operator=(const RelayBuffer&) = delete;
    char* data() { return buf_.get(); }
    static constexpr size_t size() { return kSize; }

private:
    static constexpr size_t kKeep = 32;
    static std::vector<std::unique_ptr<char[]>>& free_list() {
        thread_local std::vector<std::unique_ptr<char[]>> free;
        return free;
    }
    std::unique_ptr<char[]> buf_;
};

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

// read: the sender went away (BodyOptions::read_error says how); malformed: its body broke HTTP
// framing (e.g. a bad chunk size); `*_before_head` means nothing had been forwarded yet;
// transform: compressing what is forwarded failed.
enum class RelayError {
    none, read_before_head, read, malformed_before_head, malformed, write, transform, blocked_before_head,
    blocked_after_head, stalled_before_head, stalled
};

// Why a response body did not arrive or could not be delivered whole, as the audit record, the
// log and (when nothing was sent yet) the page say it. Counts the origin's failures on the way
// (upstream_bad_response, upstream_timeout).
struct TransferFailure {
    Failure failure;
    bool page_possible = false;  // nothing was sent to the client yet, and the client is there
};
TransferFailure classify_transfer_failure(RelayError relayed, const error_code& cut, bool stopping, Counters& counters);

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
};

// Streams a message body from `in` (parsed by `p`) to `out` as `msg` (the head we re-serialised),
// one buffer at a time: memory stays bounded whatever the body size. The first `hold` bytes are
// held back (head included): a signature match or a framing error there leaves nothing sent.
// Later bytes are scanned before they are forwarded, and a match stops the transfer. Scanning
// sees the body as the origin sent it; compression comes after.
template <class In, class Out, bool isRequest>
net::awaitable<RelayError> relay_body(In& in, beast::flat_buffer& in_buf, http::parser<isRequest, http::buffer_body>& p,
                                      Out& out, http::message<isRequest, http::buffer_body>& msg, Context cx,
                                      const BodyOptions& o) {
    constexpr auto direction = isRequest ? Throttle::from_client : Throttle::to_client;
    http::serializer<isRequest, http::buffer_body> sr{msg};
    std::optional<RelayBuffer> chunk;  // only when there is a body to read (a GET has none)
    if (!p.is_done()) chunk.emplace();
    auto& client_side = isRequest ? cx.counters.bytes_in : cx.counters.bytes_out;  // the client side of this body
    // A response body of known length is read straight into the relay buffer (after the bytes
    // that came with the head): no copy through the read buffer and the parser, and one stream
    // operation per read instead of Beast's three. The parser sees only the head; `left` is
    // what is still to come. Bytes past the body stay in `in_buf` or the stream (the connection
    // is then not clean: HttpRelay::upstream_clean checks both).
    std::optional<std::uint64_t> left;
    if (!isRequest && !p.is_done() && !p.chunked() && p.content_length()) {
        if (auto r = p.content_length_remaining()) left = *r;
    }
    auto done = [&] { return left ? *left == 0 : p.is_done(); };
    // Reads the next piece of the body into `into`; returns the bytes read, or an error.
    // Returns (0 ok | 1 closed | 2 malformed, bytes read).
    auto read_some = [&](char* into, size_t cap) -> net::awaitable<std::pair<int, size_t>> {
        if (o.throttle) cap = o.throttle->chunk(direction, cap);
        if (left) {
            cap = static_cast<size_t>(std::min<std::uint64_t>(cap, *left));
            std::size_t n = 0;
            error_code ec;
            if (in_buf.size()) {  // read with the head
                n = net::buffer_copy(net::buffer(into, cap), in_buf.data());
                in_buf.consume(n);
            } else {
                expire_after(in, cx.cfg.io);
                std::tie(ec, n) = co_await in.async_read_some(net::buffer(into, cap), use_nothrow);
            }
            *left -= n;
            if (ec && n == 0 && o.read_error) *o.read_error = ec;
            if (o.throttle) co_await pace(o.throttle, direction, n, cx);
            co_return std::pair<int, size_t>{ec && n == 0 ? 1 : 0, n};  // closed before the end: like Beast's partial_message
        }
        p.get().body().data = into;
        p.get().body().size = cap;
        CancelAt stalled;
        if (o.stall) stalled.arm(co_await net::this_coro::executor, o.stall->window_end, in);
        expire_after(in, cx.cfg.io);
        // A chunked request body is read one socket read at a time, so that what Beast leaves
        // unparsed can be looked at: unless the body buffer is full, that is a partial chunk
        // line, CRLF or trailer, where a bare LF means framing Beast would wait on for ever
        // (it looks for a CRLF) — refused now instead.
        const bool chunked_request = isRequest && p.chunked();
        auto [ec, n] = chunked_request ? co_await http::async_read_some(in, in_buf, p, use_nothrow)
                                       : co_await http::async_read(in, in_buf, p, use_nothrow);
        if (o.stall && stalled.fired(ec)) co_return std::pair<int, size_t>{3, 0};
        if (isRequest) {
            count(client_side, n);
            if (o.tx_bytes) *o.tx_bytes += static_cast<int64_t>(n);
        }
        if (chunked_request && !ec && !p.is_done() &&
            has_bare_lf({static_cast<const char*>(in_buf.data().data()), in_buf.size()}))
            co_return std::pair<int, size_t>{2, 0};
        if (ec == http::error::need_buffer) ec = {};
        int status = !ec ? 0 : (ec.category() == http::make_error_code(http::error::end_of_stream).category() &&
                                ec != http::error::end_of_stream && ec != http::error::partial_message)
                                   ? 2
                                   : 1;
        if (status == 1 && o.read_error) *o.read_error = ec;
        const size_t got = cap - p.get().body().size;
        if (o.stall) o.stall->add(got);
        if (o.throttle) co_await pace(o.throttle, direction, got, cx);  // no coroutine frame when unlimited
        co_return std::pair<int, size_t>{status, got};
    };
    // The next piece to write: the bytes as read, or compressed (the last piece ends the stream).
    bool compress_failed = false;
    auto forward = [&](const char* data, size_t size) {
        const bool last = done();
        std::string_view piece(data, size);
        if (o.compress && !compress_failed) {
            try {
                piece = o.compress->feed(piece, last);
            } catch (const std::exception& e) {
                log_error(std::string("compression failed, transfer ended: ") + e.what());
                compress_failed = true;
            }
        }
        msg.body().data = piece.empty() ? nullptr : const_cast<char*>(piece.data());
        msg.body().size = piece.size();
        msg.body().more = !last;
    };
    auto captured = [&] {
        if (o.capture && done() && o.capture->complete) std::exchange(o.capture->complete, nullptr)();
    };
    std::string held;
    if (auto length = p.content_length_remaining(); o.hold > 0 && chunk && length)  // one allocation, no regrowth
        held.reserve(static_cast<size_t>(std::min<std::uint64_t>(*length, o.hold + RelayBuffer::size())));
    while (o.hold > 0 && !done() && held.size() < o.hold) {
        auto [status, got] = co_await read_some(chunk->data(), chunk->size());
        if (status == 2) co_return RelayError::malformed_before_head;
        if (status == 3) co_return RelayError::stalled_before_head;
        if (status) co_return RelayError::read_before_head;
        held.append(chunk->data(), got);
        if (o.capture) o.capture->add(std::string_view(chunk->data(), got));
        if (o.scanner && o.scanner->feed(std::string_view(chunk->data(), got)).action == inspect::Action::block)
            co_return RelayError::blocked_before_head;
    }
    captured();
    forward(held.data(), held.size());
    for (bool first = true; first || !sr.is_done(); first = false) {
        if (compress_failed) co_return RelayError::transform;  // the client gets a cut-off body, never a wrong one
        if (!first) {
            if (!done()) {
                auto [status, got] = co_await read_some(chunk->data(), chunk->size());
                if (status == 2) co_return RelayError::malformed;
                if (status == 3) co_return RelayError::stalled;
                if (status) co_return RelayError::read;
                if (o.scanner && o.scanner->feed(std::string_view(chunk->data(), got)).action == inspect::Action::block)
                    co_return RelayError::blocked_after_head;
                if (o.capture) o.capture->add(std::string_view(chunk->data(), got));
                captured();
                forward(chunk->data(), got);
            } else {
                msg.body().data = nullptr;
                msg.body().size = 0;
                msg.body().more = false;
            }
        }
        expire_after(out, cx.cfg.io);
        auto [ec, n] = co_await http::async_write(out, sr, use_nothrow);
        if (!isRequest) {
            count(client_side, n);
            if (o.tx_bytes) *o.tx_bytes += static_cast<int64_t>(n);
        }
        if (ec == http::error::need_buffer) ec = {};
        if (ec) co_return RelayError::write;
    }
    co_return RelayError::none;
}

}  // namespace vigil::wire

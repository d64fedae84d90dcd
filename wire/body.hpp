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
#include "wire/held.hpp"
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

// What the serializer writes next: the bytes as read, or compressed (the last piece ends the
// compressed stream). A compression failure ends the transfer: a cut-off body, never a wrong one.
template <bool isRequest>
class BodyPieces {
public:
    BodyPieces(http::message<isRequest, http::buffer_body>& msg, Compressor* compress) : msg_(msg), compress_(compress) {}
    void forward(std::string_view piece, bool last) {
        if (compress_ && !failed_) {
            try {
                piece = compress_->feed(piece, last);
            } catch (const std::exception& e) {
                log_error(std::string("compression failed, transfer ended: ") + e.what());
                failed_ = true;
            }
        }
        msg_.body().data = piece.empty() ? nullptr : const_cast<char*>(piece.data());
        msg_.body().size = piece.size();
        msg_.body().more = !last;
    }
    // Nothing more: the serializer finishes the message (the compressor already ended its stream).
    void end() {
        msg_.body().data = nullptr;
        msg_.body().size = 0;
        msg_.body().more = false;
    }
    bool failed() const { return failed_; }

private:
    http::message<isRequest, http::buffer_body>& msg_;
    Compressor* compress_;
    bool failed_ = false;
};

inline RelayError read_failure(ReadStatus s, bool before_head) {
    switch (s) {
        case ReadStatus::malformed: return before_head ? RelayError::malformed_before_head : RelayError::malformed;
        case ReadStatus::stalled: return before_head ? RelayError::stalled_before_head : RelayError::stalled;
        default: return before_head ? RelayError::read_before_head : RelayError::read;
    }
}

// One piece through the filters before it is forwarded: scanned (false: it matched a blocking
// signature) and copied for the cache (whose `complete` runs once the body is whole).
inline bool filter_piece(const BodyOptions& o, std::string_view piece, bool body_done) {
    if (o.scanner && o.scanner->feed(piece).action == inspect::Action::block) return false;
    if (o.capture) {
        o.capture->add(piece);
        if (body_done && o.capture->complete) std::exchange(o.capture->complete, nullptr)();
    }
    return true;
}

// Streams a message body from `in` (parsed by `p`) to `out` as `msg` (the head we re-serialised),
// one buffer at a time: memory stays bounded whatever the body size. The first `hold` bytes are
// held back (head included): a signature match or a framing error there leaves nothing sent.
// Later bytes are scanned before they are forwarded, and a match stops the transfer. Scanning
// sees the body as the origin sent it; compression comes after.
template <class In, class Out, bool isRequest>
net::awaitable<RelayError> relay_body(In& in, beast::flat_buffer& in_buf, http::parser<isRequest, http::buffer_body>& p,
                                      Out& out, http::message<isRequest, http::buffer_body>& msg, Context cx,
                                      const BodyOptions& o) {
    http::serializer<isRequest, http::buffer_body> sr{msg};
    BodyReader<In, isRequest> reader(in, in_buf, p, cx, o);
    BodyPieces<isRequest> pieces(msg, o.compress);
    std::optional<RelayBuffer> chunk;  // only when there is a body to read (a GET has none)
    if (!p.is_done()) chunk.emplace();
    HeldBytes held;
    if (auto length = p.content_length_remaining(); o.hold > 0 && chunk && length)  // one allocation, no regrowth
        held.reserve(static_cast<size_t>(std::min<std::uint64_t>(*length, o.hold + RelayBuffer::size())));
    while (o.hold > 0 && !reader.done() && held.size() < o.hold) {
        auto [status, got] = co_await reader.read(chunk->data(), chunk->size());
        if (status != ReadStatus::ok) co_return read_failure(status, true);
        const std::string_view piece(chunk->data(), got);
        held.append(piece);
        if (!filter_piece(o, piece, reader.done())) co_return RelayError::blocked_before_head;
    }
    if (held.empty() && reader.done() && o.capture && o.capture->complete)  // an empty body is complete too
        std::exchange(o.capture->complete, nullptr)();
    pieces.forward(held, reader.done());
    for (bool first = true; first || !sr.is_done(); first = false) {
        if (pieces.failed()) co_return RelayError::transform;
        if (!first && reader.done()) {
            pieces.end();
        } else if (!first) {
            auto [status, got] = co_await reader.read(chunk->data(), chunk->size());
            if (status != ReadStatus::ok) co_return read_failure(status, false);
            const std::string_view piece(chunk->data(), got);
            if (!filter_piece(o, piece, reader.done())) co_return RelayError::blocked_after_head;
            pieces.forward(piece, reader.done());
        }
        expire_after(out, cx.cfg.io);
        if (o.first_write && *o.first_write == std::chrono::steady_clock::time_point{})
            *o.first_write = std::chrono::steady_clock::now();
        auto [ec, n] = co_await http::async_write(out, sr, use_nothrow);
        if (!isRequest) {
            count(cx.counters.bytes_out, n);
            if (o.tx_bytes) *o.tx_bytes += static_cast<int64_t>(n);
        }
        if (ec && ec != http::error::need_buffer) co_return RelayError::write;
    }
    co_return RelayError::none;
}

}  // namespace vigil::wire

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
#include "wire/body_reader.hpp"
#include "wire/buffers.hpp"
#include "wire/compress.hpp"
#include "wire/context.hpp"
#include "wire/failure.hpp"
#include "wire/framing.hpp"
#include "wire/head_read.hpp"
#include "wire/pages.hpp"

namespace vigil::wire {

namespace http = beast::http;

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

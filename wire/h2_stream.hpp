// One HTTP/2 stream seen by the relay as an HTTP/1.1 connection. On the client leg
// (H2Stream): reads give the request the connection translated (wire/h2_translate.hpp) and its
// body; writes take the relay's HTTP/1.1 response, parsed back into a head and body bytes the
// connection sends as HEADERS and DATA. On the origin leg (H2OriginStream, upstream/h2_origin)
// the same the other way round: writes take the relay's request, reads give the origin's
// response as HTTP/1.1. So every phase of a transaction (policy, scans, the hold, the cache,
// the audit record) is the one HTTP/1.1 uses. Buffering is bounded both ways: what is read by
// the receive window (the connection returns window only as the relay reads), what is written
// by kOutLimit (a write waits while the peer does not take DATA).
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <type_traits>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/buffers_prefix.hpp>
#include <boost/beast/core/buffers_range.hpp>
#include <boost/beast/http/error.hpp>

#include <nghttp2/nghttp2.h>

#include "io/asio.hpp"
#include "wire/h2_parsers.hpp"

namespace vigil::wire {

namespace http = boost::beast::http;
using io::error_code;
namespace net = boost::asio;
using bsv = boost::beast::string_view;

template <class Parser>
class H2Pipe {
public:
    static constexpr bool kRequest = std::is_same_v<Parser, H2RequestParser>;  // the origin leg
    using executor_type = net::any_io_executor;
    static constexpr size_t kOutLimit = 256 * 1024;  // response bytes waiting for the client

    H2Pipe(executor_type ex, H2Sink& sink, int32_t id, bool head_request)
        : ex_(ex), sink_(sink), id_(id), head_request_(head_request), rtimer_(ex), wtimer_(ex), turn_(ex) {
        parser_.emplace(body_, head_request_);
    }
    H2Pipe(const H2Pipe&) = delete;
    H2Pipe& operator=(const H2Pipe&) = delete;

    executor_type get_executor() { return ex_; }
    int32_t id() const { return id_; }
    // A HEAD request's response has a head only (set before the relay writes).
    void head_request(bool v) {
        head_request_ = v;
        parser_->skip(v);
    }

    // ---- the connection's side ----
    // Bytes for the relay to read: `window` of them count against the stream's receive window.
    void push_request(std::string_view bytes, size_t window) {
        in_.append(bytes);
        unreturned_ += window;
        rtimer_.cancel();
    }
    // Body bytes of DATA frames, framed as the head said: one chunk each, or as they are.
    void push_data(std::string_view bytes, bool chunked) {
        if (!chunked) return push_request(bytes, bytes.size());
        char size[24];
        const int m = std::snprintf(size, sizeof size, "%zx\r\n", bytes.size());
        push_request(std::string_view(size, size_t(m)), 0);
        push_request(bytes, bytes.size());
        push_request("\r\n", 0);
    }
    void end_request() {
        in_end_ = true;
        rtimer_.cancel();
    }
    // The stream is gone (reset by either side, or the connection ended): waits fail.
    void reset() {
        reset_ = true;
        rtimer_.cancel();
        wtimer_.cancel();
    }
    bool is_reset() const { return reset_; }
    bool deadline_passed() const { return deadline_passed_; }  // a wait ended by its deadline
    // Waiting for an origin-connection slot (h2_connection.cpp): true when give_turn() handed
    // it one, false when cancel_turn() ended the wait (the stream was reset, the connection ended).
    net::awaitable<bool> wait_turn() {
        waiting_turn_ = true;
        turn_.expires_at(std::chrono::steady_clock::time_point::max());
        while (waiting_turn_) co_await turn_.async_wait(io::use_nothrow);
        co_return granted_;
    }
    bool give_turn() {
        if (!waiting_turn_) return false;
        waiting_turn_ = false;
        granted_ = true;
        turn_.cancel();
        return true;
    }
    void cancel_turn() {
        if (!waiting_turn_) return;
        waiting_turn_ = false;
        turn_.cancel();
    }
    // The (final) head the relay wrote, once parsed.
    bool has_head() const { return head_; }
    const Parser& message() const { return *parser_; }
    // Up to `cap` body bytes for a DATA frame; `eof` once the body is complete and taken (on
    // the origin leg: once the request is; on the client leg: once finish() said so).
    size_t take_body(uint8_t* dst, size_t cap, bool& eof) {
        const size_t n = std::min(cap, body_.size() - taken_);
        std::memcpy(dst, body_.data() + taken_, n);
        taken_ += n;
        if (taken_ == body_.size()) {
            body_.clear();
            taken_ = 0;
        }
        eof = (finished_ || (kRequest && parser_->is_done())) && body_.empty();
        if (n) wtimer_.cancel();
        return n;
    }

    // ---- the relay's side, after the transaction ----
    // Whether the response was whole (a body that ends at the connection's close ends here).
    // The connection then ends the stream, or resets it when not.
    bool finish() {
        if (!head_ && !reset_) return false;
        if (!parser_->is_done() && parser_->need_eof()) {
            error_code ec;
            parser_->put_eof(ec);
        }
        finished_ = parser_->is_done();
        return finished_;
    }

    // ---- the stream interface the relay uses ----
    void expires_after(std::chrono::steady_clock::duration d) { deadline_ = std::chrono::steady_clock::now() + d; }
    void expires_at(std::chrono::steady_clock::time_point t) { deadline_ = t; }
    void cancel() {
        cancelled_ = true;
        rtimer_.cancel();
        wtimer_.cancel();
    }

    template <class Buffers, class Token>
    auto async_read_some(const Buffers& buffers, Token&& token) {
        return net::async_compose<Token, void(error_code, size_t)>(ReadOp<Buffers>{this, buffers}, token, ex_);
    }
    template <class Buffers, class Token>
    auto async_write_some(const Buffers& buffers, Token&& token) {
        return net::async_compose<Token, void(error_code, size_t)>(WriteOp<Buffers>{this, buffers}, token, ex_);
    }

private:
    // The outcome of a wait: ready, or the error an operation ends with.
    enum class Wait { ready, wait, failed };
    Wait check_read(error_code& ec) {
        if (!in_.empty()) return Wait::ready;
        if (reset_) ec = net::error::connection_reset;
        else if (in_end_) ec = net::error::eof;
        return ec ? Wait::failed : Wait::wait;
    }
    Wait check_write(error_code& ec) {
        if (reset_) ec = net::error::broken_pipe;
        else if (finished_) ec = net::error::broken_pipe;
        else if (body_.size() - taken_ < kOutLimit) return Wait::ready;
        return ec ? Wait::failed : Wait::wait;
    }
    // After a wake-up that found nothing: cancelled, past the deadline, or wait again.
    bool timed_out(error_code& ec) {
        if (cancelled_) {
            cancelled_ = false;
            ec = net::error::operation_aborted;
            return true;
        }
        if (std::chrono::steady_clock::now() >= deadline_) {
            deadline_passed_ = true;
            ec = boost::beast::error::timeout;
            return true;
        }
        return false;
    }

    template <class Buffers>
    struct ReadOp {
        H2Pipe* s;
        Buffers buffers;
        bool started = false;
        template <class Self>
        void operator()(Self& self, error_code = {}) {
            if (!started) {
                started = true;
                s->cancelled_ = false;
                return net::post(s->ex_, std::move(self));
            }
            error_code ec;
            switch (s->check_read(ec)) {
                case Wait::ready: {
                    const size_t n = net::buffer_copy(buffers, net::buffer(s->in_));
                    s->in_.erase(0, n);
                    if (s->in_.empty() && s->unreturned_) {
                        s->sink_.consumed(s->id_, s->unreturned_);
                        s->unreturned_ = 0;
                    }
                    return self.complete({}, n);
                }
                case Wait::failed: return self.complete(ec, 0);
                case Wait::wait: break;
            }
            if (s->timed_out(ec)) return self.complete(ec, 0);
            s->rtimer_.expires_at(s->deadline_);
            s->rtimer_.async_wait(std::move(self));
        }
    };

    template <class Buffers>
    struct WriteOp {
        H2Pipe* s;
        Buffers buffers;
        bool started = false;
        template <class Self>
        void operator()(Self& self, error_code = {}) {
            if (!started) {
                started = true;
                s->cancelled_ = false;
                return net::post(s->ex_, std::move(self));
            }
            error_code ec;
            switch (s->check_write(ec)) {
                case Wait::ready: {
                    const size_t room = kOutLimit - (s->body_.size() - s->taken_);
                    const size_t n = s->accept(boost::beast::buffers_prefix(room, buffers), ec);
                    return self.complete(ec, n);
                }
                case Wait::failed: return self.complete(ec, 0);
                case Wait::wait: break;
            }
            if (s->timed_out(ec)) return self.complete(ec, 0);
            s->wtimer_.expires_at(s->deadline_);
            s->wtimer_.async_wait(std::move(self));
        }
    };

    // Takes response bytes into the parser; a head or body bytes, once whole, go to the sink.
    template <class Buffers>
    size_t accept(const Buffers& buffers, error_code& ec) {
        size_t n = 0;
        for (auto b : boost::beast::buffers_range_ref(buffers)) {
            pending_.append(static_cast<const char*>(b.data()), b.size());
            n += b.size();
        }
        const size_t before = body_.size();
        while (!pending_.empty() && !ec) {
            const size_t used = parser_->put(net::buffer(pending_), ec);
            if (ec == http::error::need_more) {
                ec = {};
                break;
            }
            if (ec) break;
            pending_.erase(0, used);
            if (parser_->is_header_done() && parser_->status >= 100 && parser_->status < 200) {
                // An interim response (100 Continue): HTTP/2 clients need none; the next head follows.
                parser_.emplace(body_, head_request_);
                continue;
            }
            if (parser_->is_header_done() && !head_) {
                head_ = true;
                sink_.head_ready(id_);
            }
            if (used == 0) break;
        }
        if (ec) return 0;
        if (body_.size() != before || (kRequest && parser_->is_done())) sink_.body_ready(id_);
        return n;
    }

    executor_type ex_;
    H2Sink& sink_;
    int32_t id_;
    bool head_request_;
    net::steady_timer rtimer_, wtimer_;  // a waiting read's and write's wake-up (and deadline)
    net::steady_timer turn_;             // wait_turn()'s
    bool waiting_turn_ = false, granted_ = false;
    std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
    std::string in_;          // request bytes not read yet
    size_t unreturned_ = 0;   // request body bytes read whose window was not returned
    bool in_end_ = false, reset_ = false, cancelled_ = false, deadline_passed_ = false;
    std::string pending_;     // response bytes not parsed yet (a head in pieces)
    std::optional<Parser> parser_;
    bool head_ = false;
    std::string body_;        // response body bytes for DATA frames, from taken_ on
    size_t taken_ = 0;
    bool finished_ = false;
};

// Frames nghttp2 has ready to send, appended to `out` until it holds about `limit` bytes.
inline void take_frames(nghttp2_session* s, std::string& out, size_t limit) {
    while (out.size() < limit) {
        const uint8_t* p = nullptr;
        const ssize_t n = nghttp2_session_mem_send(s, &p);
        if (n <= 0) break;
        out.append(reinterpret_cast<const char*>(p), size_t(n));
    }
}

using H2Stream = H2Pipe<H2ResponseParser>;       // a client's stream (session/h2_connection.cpp)
using H2OriginStream = H2Pipe<H2RequestParser>;  // a stream to an origin (upstream/h2_origin.cpp)

}  // namespace vigil::wire

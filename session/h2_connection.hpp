// Internal to session/: a bumped client connection that chose HTTP/2 — its frame loop and
// transactions (h2_connection.cpp) and nghttp2's callbacks with the limits they enforce
// (h2_frames.cpp).
#pragma once

#include <nghttp2/nghttp2.h>

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "session/bumped_step.hpp"
#include "wire/h2_stream.hpp"
#include "wire/h2_translate.hpp"

namespace vigil::session::h2 {

// Control frames (SETTINGS, PING, PRIORITY, WINDOW_UPDATE, RST_STREAM) a client may send:
// a burst, then this many per second; beyond, the connection ends with ENHANCE_YOUR_CALM.
constexpr double kControlBurst = 500, kControlPerSecond = 200;
// Streams refused (REFUSED_STREAM) because the connection's transactions, reset ones included,
// were at http2.max_concurrent_streams: beyond this many, the client is not backing off.
constexpr unsigned kMaxRefused = 200;
// CONTINUATION frames after one HEADERS frame (at 16 KiB each: 144 KiB of header block).
constexpr size_t kMaxContinuations = 8;
constexpr size_t kWriteBatch = 64 * 1024;
constexpr size_t kReadBuffer = 16 * 1024, kParkedReadBuffer = 512;

class H2Connection final : public H2Sink {
public:
    H2Connection(BumpedTunnel& tunnel, Services& sv, SessionTrack& track, audit::Record& base)
        : tunnel_(tunnel), client_(tunnel.client), sv_(sv), track_(track), base_(base),
          origin_(sv, tunnel, base), wake_(client_.get_executor()), join_(client_.get_executor()) {}
    ~H2Connection() override {
        if (s_) nghttp2_session_del(s_);
    }

    net::awaitable<void> run(beast::flat_buffer& buf);

    void consumed(int32_t id, size_t n) override;
    void head_ready(int32_t id) override;
    void body_ready(int32_t id) override;

private:
    struct Entry {
        std::shared_ptr<H2Stream> stream;
        wire::H2RequestHead head;
        wire::H2Body body = wire::H2Body::none;
        size_t continuations = 0;
        bool headers_done = false, started = false, request_ended = false;
        bool done = false;    // the transaction finished
        bool closed = false;  // nghttp2 closed the stream
        size_t owed = 0;      // request body bytes received whose window was not returned
    };

    bool open_session();
    net::awaitable<void> writer();
    net::awaitable<void> serve(std::shared_ptr<H2Stream> st, std::optional<Rejection> refused);
    void start(Entry& e, bool end_stream);
    void end_request(Entry& e);
    void stream_done(H2Stream& st);
    void malformed(int32_t id, const std::string& why);
    void abuse(const char* what);
    bool control_frame();
    void wake() { wake_.cancel(); }
    // A relay ended: its origin-connection slot goes to the next waiting stream (or is freed).
    void release_slot() {
        while (!waiting_.empty()) {
            auto next = std::move(waiting_.front());
            waiting_.pop_front();
            if (next->give_turn()) return;  // the slot passes on
        }
        --relaying_;
    }
    Entry* find(int32_t id) {
        auto it = streams_.find(id);
        return it == streams_.end() ? nullptr : &it->second;
    }

    // nghttp2's callbacks, each to the member of the same name.
    static int on_begin_headers(nghttp2_session*, const nghttp2_frame*, void*);
    static int on_header(nghttp2_session*, const nghttp2_frame*, const uint8_t*, size_t, const uint8_t*, size_t,
                         uint8_t, void*);
    static int on_frame_recv(nghttp2_session*, const nghttp2_frame*, void*);
    static int on_begin_frame(nghttp2_session*, const nghttp2_frame_hd*, void*);
    static int on_data_chunk(nghttp2_session*, uint8_t, int32_t, const uint8_t*, size_t, void*);
    static int on_stream_close(nghttp2_session*, int32_t, uint32_t, void*);
    static int on_frame_send(nghttp2_session*, const nghttp2_frame*, void*);
    static int on_invalid_frame(nghttp2_session*, const nghttp2_frame*, int, void*);
    static ssize_t read_body(nghttp2_session*, int32_t, uint8_t*, size_t, uint32_t*, nghttp2_data_source*, void*);

    BumpedTunnel& tunnel_;
    TlsStream& client_;
    Services& sv_;
    SessionTrack& track_;
    audit::Record& base_;
    TunnelOrigin origin_;
    nghttp2_session* s_ = nullptr;
    std::unordered_map<int32_t, Entry> streams_;
    size_t live_ = 0;  // transactions running (a reset stream's too, until it notices)
    size_t relaying_ = 0;  // of those, relaying to the origin (the rest wait in waiting_)
    unsigned refused_ = 0;
    double tokens_ = kControlBurst;
    std::chrono::steady_clock::time_point tokens_at_ = std::chrono::steady_clock::now();
    std::chrono::steady_clock::time_point last_read_ = std::chrono::steady_clock::now();
    bool closing_ = false, writer_running_ = false, write_failed_ = false;
    net::steady_timer wake_;  // the writer's: output waits, or the idle deadline
    net::steady_timer join_;  // run()'s: the writer and the transactions have ended
    std::deque<std::shared_ptr<H2Stream>> waiting_;  // streams waiting for an origin connection
};

inline H2Connection* self(void* ud) { return static_cast<H2Connection*>(ud); }

}  // namespace vigil::session::h2

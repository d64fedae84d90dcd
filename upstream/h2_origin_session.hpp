// Internal to upstream/: one HTTP/2 connection to an origin (h2_origin.cpp), shared by the
// worker's transactions through OriginStream (origin_stream.cpp).
#pragma once

#include <nghttp2/nghttp2.h>

#include <chrono>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "upstream/h2_origin.hpp"

namespace vigil::upstream {

class H2OriginSession final : public wire::H2Sink, public std::enable_shared_from_this<H2OriginSession> {
public:
    H2OriginSession(TlsStream tls, std::string key, Counters& counters, uint64_t cid)
        : tls_(std::move(tls)), key_(std::move(key)), counters_(counters), cid_(cid), wake_(tls_.get_executor()) {}
    ~H2OriginSession() override {
        if (s_) nghttp2_session_del(s_);
    }

    bool start(bool shared);
    bool usable() const { return s_ && !closing_ && !goaway_ && !retired_ && nghttp2_session_want_read(s_); }
    SSL* ssl() { return tls_.native_handle(); }
    std::shared_ptr<wire::H2OriginStream> open_stream();
    void forget(int32_t handle);
    const std::string& key() const { return key_; }

    void consumed(int32_t handle, size_t n) override;
    void head_ready(int32_t handle) override;
    void body_ready(int32_t handle) override;

    // Origins that answered HTTP_1_1_REQUIRED, until when (per worker).
    static std::unordered_map<std::string, std::chrono::steady_clock::time_point>& http1_required() {
        thread_local std::unordered_map<std::string, std::chrono::steady_clock::time_point> r;
        return r;
    }
    static std::unordered_map<std::string, std::weak_ptr<H2OriginSession>>& registry() {
        thread_local std::unordered_map<std::string, std::weak_ptr<H2OriginSession>> r;
        return r;
    }

private:
    struct Entry {
        int32_t handle = 0, sid = -1;
        std::shared_ptr<wire::H2OriginStream> st;
        bool head_request = false, head_sent = false, chunked = false, ended = false, closed = false;
        unsigned status = 0;
        std::vector<std::pair<std::string, std::string>> fields;  // the response head being received
        size_t owed = 0;
    };
    Entry* entry(int32_t sid) { return static_cast<Entry*>(nghttp2_session_get_stream_user_data(s_, sid)); }
    Entry* by_handle(int32_t h) {
        auto it = entries_.find(h);
        return it == entries_.end() ? nullptr : it->second.get();
    }
    void wake() { wake_.cancel(); }
    void response_head(Entry& e, bool end_stream);
    void end_response(Entry& e);
    net::awaitable<void> reader(std::shared_ptr<H2OriginSession> keep);
    net::awaitable<void> writer(std::shared_ptr<H2OriginSession> keep);
    void close_all();

    static int on_header(nghttp2_session*, const nghttp2_frame*, const uint8_t*, size_t, const uint8_t*, size_t, uint8_t,
                         void*);
    static int on_frame_recv(nghttp2_session*, const nghttp2_frame*, void*);
    static int on_data_chunk(nghttp2_session*, uint8_t, int32_t, const uint8_t*, size_t, void*);
    static int on_stream_close(nghttp2_session*, int32_t, uint32_t, void*);
    static ssize_t read_body(nghttp2_session*, int32_t, uint8_t*, size_t, uint32_t*, nghttp2_data_source*, void*);

    TlsStream tls_;
    std::string key_;
    Counters& counters_;
    uint64_t cid_;
    nghttp2_session* s_ = nullptr;
    std::unordered_map<int32_t, std::unique_ptr<Entry>> entries_;
    int32_t next_handle_ = 1;
    bool closing_ = false, goaway_ = false, shared_ = false, writer_running_ = false;
    bool retired_ = false;  // a stream went unanswered: no new streams
    std::chrono::steady_clock::time_point last_used_ = std::chrono::steady_clock::now();
    net::steady_timer wake_;
};

}  // namespace vigil::upstream

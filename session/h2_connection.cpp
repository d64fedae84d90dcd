// A bumped client connection that chose HTTP/2 (docs/http2.md): nghttp2 runs the protocol over
// the TLS stream; each request stream becomes one transaction through the relay, exactly as an
// HTTP/1.1 request would (wire/h2_stream.hpp). This file: the frame loop, the writer, a stream's
// transaction and its end; h2_frames.cpp: what arrives, and the limits on it.
#include "session/h2_connection.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

namespace vigil::session {

extern template class HttpRelay<H2Stream, upstream::OriginStream>;  // h2_relay.cpp

namespace h2 {

bool H2Connection::open_session() {
    nghttp2_session_callbacks* cb = nullptr;
    if (nghttp2_session_callbacks_new(&cb) != 0) return false;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_begin_frame_callback(cb, on_begin_frame);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cb, on_invalid_frame);
    nghttp2_option* opt = nullptr;
    nghttp2_option_new(&opt);
    // Window is returned as the relay reads a body, so a client's upload is held by Vigil only
    // up to the windows (http2.stream_window, http2.connection_window).
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_max_continuations(opt, kMaxContinuations);
    nghttp2_option_set_max_settings(opt, 16);
    nghttp2_option_set_max_outbound_ack(opt, 100);
    nghttp2_option_set_stream_reset_rate_limit(opt, 2 * sv_.cfg.http2.max_streams + 100, 50);
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
    nghttp2_option_set_no_closed_streams(opt, 1);  // no priority tree of finished streams to keep
    const int rv = nghttp2_session_server_new2(&s_, cb, this, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    if (rv != 0) return false;
    const nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, sv_.cfg.http2.max_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, sv_.cfg.http2.stream_window},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, uint32_t(sv_.cfg.max_header_bytes)},
        {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, 4096},
    };
    if (nghttp2_submit_settings(s_, NGHTTP2_FLAG_NONE, settings, std::size(settings)) != 0) return false;
    const int32_t extra = int32_t(sv_.cfg.http2.connection_window) - NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE;
    if (extra > 0 && nghttp2_submit_window_update(s_, NGHTTP2_FLAG_NONE, 0, extra) != 0) return false;
    return true;
}

// The frame loop: bytes from the client into nghttp2 (whose callbacks start transactions), the
// writer sending what nghttp2 and the transactions produce. Ends when either side ends the
// connection; then waits for its transactions, which reference it.
net::awaitable<void> H2Connection::run(beast::flat_buffer& buf) {
    count(sv_.counters.h2_connections);
    base_.client_tls += " h2";
    if (tunnel_.verdict.action == inspect::Action::block) origin_.blocked();
    else co_await origin_.connect();
    if (!open_session()) co_return;
    writer_running_ = true;
    net::co_spawn(client_.get_executor(), writer(), net::detached);
    std::vector<uint8_t> in(kReadBuffer);
    bool parked = false;
    for (;;) {
        const uint8_t* data = in.data();
        size_t n = 0;
        if (buf.size()) {  // read with the handshake (the client's preface, often)
            data = static_cast<const uint8_t*>(buf.data().data());
            n = buf.size();
        } else {
            track_.idle = live_ == 0;
            expire_after(client_, sv_.cfg.tunnel_idle);
            // Quiet for kParkAfter with no transaction: parked like an idle HTTP/1.1 connection —
            // the read buffer and OpenSSL's let go, the wait goes on with a small one.
            CancelAt park;
            const bool may_park = live_ == 0 && !parked;
            if (may_park) park.arm(client_.get_executor(), std::chrono::steady_clock::now() + kParkAfter, client_);
            auto [ec, got] = co_await client_.async_read_some(net::buffer(in), use_nothrow);
            if (may_park && park.fired(ec)) {
                parked = true;
                count(sv_.counters.parked);
                std::vector<uint8_t>(kParkedReadBuffer).swap(in);
                client_.release_idle_buffers();
                continue;
            }
            if (ec) break;
            n = got;
            count(sv_.counters.bytes_in, n);
            if (parked) {
                parked = false;
                std::vector<uint8_t> full(kReadBuffer);
                std::copy_n(in.begin(), n, full.begin());
                in.swap(full);
                data = in.data();
            }
        }
        last_read_ = std::chrono::steady_clock::now();
        const ssize_t used = nghttp2_session_mem_recv(s_, data, n);
        buf.consume(buf.size());
        if (used < 0) {
            // A connection error (bad preface, flood, protocol violation): nghttp2 has queued the
            // GOAWAY with the right code where one is owed.
            log_info(std::string("HTTP/2 connection ended: ") + nghttp2_strerror(int(used)), base_.conn_id);
            if (used == NGHTTP2_ERR_FLOODED) abuse("frames answered faster than the client reads");
            break;
        }
        wake();
        if (!nghttp2_session_want_read(s_) && !nghttp2_session_want_write(s_)) break;
        if (write_failed_) break;
    }
    closing_ = true;
    for (auto& [id, e] : streams_) e.stream->reset();
    for (auto& st : waiting_) st->cancel_turn();
    waiting_.clear();
    wake();
    while (writer_running_ || live_ > 0) {
        join_.expires_after(std::chrono::hours(1));
        co_await join_.async_wait(use_nothrow);
    }
    if (!write_failed_) {
        lowest(client_).expires_after(std::chrono::seconds(2));
        co_await client_.async_shutdown(use_nothrow);
    }
}

// Sends what nghttp2 has to send, in batches; sleeps until a transaction or the reader has more.
// A connection with no transaction and nothing read for timeouts.idle gets a GOAWAY and ends.
net::awaitable<void> H2Connection::writer() {
    std::string out;
    while (!write_failed_) {
        out.clear();
        wire::take_frames(s_, out, kWriteBatch);
        if (!out.empty()) {
            expire_after(client_, sv_.cfg.io);
            auto [ec, n] = co_await net::async_write(client_, net::buffer(out), use_nothrow);
            count(sv_.counters.bytes_out, n);
            if (ec) write_failed_ = true;
            continue;
        }
        if (closing_) break;
        const bool idle = live_ == 0;
        const auto deadline = idle ? last_read_ + sv_.cfg.idle : std::chrono::steady_clock::time_point::max();
        if (idle && (std::chrono::steady_clock::now() >= deadline || sv_.life.stopping)) {
            // Quiet for timeouts.idle (or shutting down): say so, then end the reader's wait.
            nghttp2_session_terminate_session(s_, NGHTTP2_NO_ERROR);
            wire::take_frames(s_, out, SIZE_MAX);
            expire_after(client_, std::chrono::seconds(2));
            co_await net::async_write(client_, net::buffer(out), use_nothrow);
            cancel_pending(client_);
            break;
        }
        wake_.expires_at(deadline);
        co_await wake_.async_wait(use_nothrow);
        // What else is ready to run first (other streams' responses) goes out in the same write.
        co_await net::post(client_.get_executor(), net::use_awaitable);
    }
    writer_running_ = false;
    if (write_failed_) cancel_pending(client_);
    join_.cancel();
}

// One stream's transaction: the translated head read and checked like any HTTP/1.1 head, then
// the bumped tunnel's step (the origin's refusal, the target check, the relay).
net::awaitable<void> H2Connection::serve(std::shared_ptr<H2Stream> st, std::optional<Rejection> refused) {
    if (refused) {
        co_await refused_head(*st, sv_, base_, *refused, &tunnel_.origin);
    } else {
        beast::flat_buffer buf;
        auto head = co_await read_request_head(*st, buf, sv_.wire, HeadDeadline::fresh(sv_.cfg.header_read));
        if (st->is_reset()) {
            // Reset before its transaction began (rapid reset): no origin is asked, nothing to record.
        } else if (head.status == HeadRead::rejected) {
            co_await refused_head(*st, sv_, base_, head.rejection, &tunnel_.origin);
        } else if (head.status == HeadRead::ok) {
            count(sv_.counters.requests);
            // HTTP/1.1 origins: at most http2.origin_connections of the streams relay at once
            // (each needs its own origin connection); the others wait their turn, as a browser's
            // seventh request to a host waits.
            // In arrival order: a released slot wakes only the stream next in line.
            bool slot = relaying_ < sv_.cfg.http2.origin_connections && !closing_;
            if (slot) {
                ++relaying_;
            } else if (!closing_) {
                waiting_.push_back(st);
                slot = co_await st->wait_turn();
            }
            if (!slot || st->is_reset()) {
                if (slot) release_slot();
                stream_done(*st);
                co_return;
            }
            auto connect = [this](const Authority& a, std::optional<OriginStream>& up, Route& route) {
                return origin_.reconnect(a, up, route);
            };
            HttpRelay<H2Stream, OriginStream> relay(relay_services(sv_), *st, buf, base_.conn_id, base_.client_ip, connect);
            relay.set_throttle(track_.throttle);
            unsigned seen = origin_.generation() + 1;  // the relay takes the audit base now
            co_await bumped_step(*st, sv_, base_, tunnel_, origin_, relay, seen, *head.parser);
            // The origin connection may serve the next stream (or client) of this worker.
            std::string key;
            std::shared_ptr<upstream::ParentLease> lease;
            auto idle = relay.origin().release_idle(key, lease);
            upstream::pool_idle(std::move(idle), std::move(key), std::move(lease), sv_.life.stopping);
            release_slot();
        }
    }
    stream_done(*st);
}

// A stream whose request head is complete (and, without a Content-Length, whose body has
// started or ended): translated and handed to a transaction of its own.
void H2Connection::start(Entry& e, bool end_stream) {
    e.started = true;
    e.stream->head_request(e.head.method == "HEAD");
    wire::H1Request r;
    std::optional<Rejection> refused = wire::h1_request(e.head, end_stream, r);
    e.body = r.body;
    e.head = {};
    if (!refused) e.stream->push_request(r.head, 0);
    if (end_stream) e.stream->end_request();
    count(sv_.counters.h2_streams);
    ++live_;
    track_.idle = false;
    net::co_spawn(client_.get_executor(), serve(e.stream, std::move(refused)), net::detached);
}

void H2Connection::end_request(Entry& e) {
    if (e.request_ended) return;
    e.request_ended = true;
    if (!e.headers_done) return;
    if (!e.started) return start(e, true);
    if (e.body == wire::H2Body::chunked) e.stream->push_request("0\r\n\r\n", 0);
    e.stream->end_request();
}

// The transaction ended: the stream ends with the response, or is reset when the response was
// not whole (as an HTTP/1.1 connection would be closed); window the relay never read is returned.
void H2Connection::stream_done(H2Stream& st) {
    --live_;
    track_.idle = live_ == 0;
    if (live_ == 0) join_.cancel();
    Entry* e = find(st.id());
    if (!e) return;
    e->done = true;
    const bool whole = st.finish();
    if (e->closed) {
        streams_.erase(st.id());
    } else {
        if (whole) nghttp2_session_resume_data(s_, st.id());
        else nghttp2_submit_rst_stream(s_, NGHTTP2_FLAG_NONE, st.id(), NGHTTP2_INTERNAL_ERROR);
        if (e->owed) nghttp2_session_consume(s_, st.id(), e->owed);
        e->owed = 0;
    }
    if (sv_.life.stopping && !closing_) nghttp2_submit_shutdown_notice(s_);
    wake();
}

void H2Connection::consumed(int32_t id, size_t n) {
    Entry* e = find(id);
    if (!e) return;
    n = std::min(n, e->owed);
    e->owed -= n;
    if (n && !e->closed) nghttp2_session_consume(s_, id, n);
    wake();
}

void H2Connection::head_ready(int32_t id) {
    Entry* e = find(id);
    if (!e || e->closed) return;
    const H2ResponseParser& res = e->stream->message();
    const auto fields = wire::h2_response_fields(res.fields);
    const std::string status = std::to_string(res.status);
    std::vector<nghttp2_nv> nv;
    nv.reserve(fields.size() + 1);
    auto add = [&nv](const std::string& name, const std::string& value) {
        nv.push_back(nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                                reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                                value.size(), NGHTTP2_NV_FLAG_NONE});
    };
    static const std::string kStatus = ":status";
    add(kStatus, status);
    for (const auto& [name, value] : fields) add(name, value);
    nghttp2_data_provider body{};
    body.read_callback = read_body;
    nghttp2_submit_response(s_, id, nv.data(), nv.size(), &body);
    wake();
}

void H2Connection::body_ready(int32_t id) {
    nghttp2_session_resume_data(s_, id);
    wake();
}

}  // namespace h2

bool negotiated_h2(SSL* ssl) {
    const unsigned char* p = nullptr;
    unsigned len = 0;
    SSL_get0_alpn_selected(ssl, &p, &len);
    return len == 2 && p[0] == 'h' && p[1] == '2';
}

net::awaitable<void> h2_requests(BumpedTunnel& tunnel, beast::flat_buffer& buf, Services& sv, SessionTrack& track,
                                 audit::Record& base) {
    h2::H2Connection conn(tunnel, sv, track, base);
    co_await conn.run(buf);
}

}  // namespace vigil::session


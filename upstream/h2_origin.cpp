// One HTTP/2 connection to an origin (upstream/h2_origin.hpp): nghttp2's client session over a
// verified TLS connection, a stream per request written by the relay, the origin's response
// given back to the relay as HTTP/1.1 bytes.
#include "upstream/h2_origin_session.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/status.hpp>

#include "upstream/pool.hpp"
#include "wire/h2_translate.hpp"

namespace vigil::upstream {

namespace http = boost::beast::http;

namespace {
constexpr uint32_t kStreamWindow = 256 * 1024, kConnectionWindow = 4 * 1024 * 1024;
constexpr std::chrono::seconds kIdle{15};  // as the pool of HTTP/1.1 connections
constexpr size_t kWriteBatch = 64 * 1024;
constexpr std::chrono::minutes kHttp1Required{30};
H2OriginSession* self_of(void* ud) { return static_cast<H2OriginSession*>(ud); }
}  // namespace

bool H2OriginSession::start(bool shared) {
    nghttp2_session_callbacks* cb = nullptr;
    if (nghttp2_session_callbacks_new(&cb) != 0) return false;
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_option* opt = nullptr;
    nghttp2_option_new(&opt);
    nghttp2_option_set_no_auto_window_update(opt, 1);  // window returns as the relay reads
    nghttp2_option_set_max_continuations(opt, 8);
    nghttp2_option_set_max_settings(opt, 32);
    const int rv = nghttp2_session_client_new2(&s_, cb, this, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    if (rv != 0) return false;
    const nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, kStreamWindow},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, 256 * 1024},
    };
    if (nghttp2_submit_settings(s_, NGHTTP2_FLAG_NONE, settings, std::size(settings)) != 0) return false;
    nghttp2_submit_window_update(s_, NGHTTP2_FLAG_NONE, 0, int32_t(kConnectionWindow - 65535));
    shared_ = shared;
    if (shared) registry()[key_] = weak_from_this();
    count(counters_.h2_origin_connections);
    writer_running_ = true;
    net::co_spawn(tls_.get_executor(), reader(shared_from_this()), net::detached);
    net::co_spawn(tls_.get_executor(), writer(shared_from_this()), net::detached);
    return true;
}

std::shared_ptr<wire::H2OriginStream> H2OriginSession::open_stream() {
    auto e = std::make_unique<Entry>();
    e->handle = next_handle_++;
    e->st = std::make_shared<wire::H2OriginStream>(tls_.get_executor(), *this, e->handle, false);
    auto st = e->st;
    entries_[e->handle] = std::move(e);
    last_used_ = std::chrono::steady_clock::now();
    count(counters_.h2_origin_streams);
    return st;
}

// The relay is done with a stream: one still open is cancelled, its unread window returned.
void H2OriginSession::forget(int32_t handle) {
    Entry* e = by_handle(handle);
    if (!e) return;
    if (e->sid > 0 && !e->closed) {
        // Given up on before the origin answered (a deadline passed): the connection may be dead
        // without having said so. New requests open a new one; this one ends when idle.
        if (!e->head_sent && e->st->deadline_passed()) retired_ = true;
        nghttp2_session_set_stream_user_data(s_, e->sid, nullptr);
        if (!e->ended) nghttp2_submit_rst_stream(s_, NGHTTP2_FLAG_NONE, e->sid, NGHTTP2_CANCEL);
        if (e->owed) nghttp2_session_consume(s_, e->sid, e->owed);
    }
    entries_.erase(handle);
    last_used_ = std::chrono::steady_clock::now();
    wake();
}

void H2OriginSession::consumed(int32_t handle, size_t n) {
    Entry* e = by_handle(handle);
    if (!e) return;
    n = std::min(n, e->owed);
    e->owed -= n;
    if (n && !e->closed) nghttp2_session_consume(s_, e->sid, n);
    wake();
}

// The relay wrote the request head: it becomes a HEADERS frame (and DATA frames when it has a body).
void H2OriginSession::head_ready(int32_t handle) {
    Entry* e = by_handle(handle);
    if (!e || closing_) {
        if (e) e->st->reset();
        return;
    }
    const wire::H2RequestParser& req = e->st->message();
    e->head_request = req.method == http::verb::head;
    std::string authority(req.fields[http::field::host]);
    const auto fields = wire::h2_response_fields(req.fields);  // connection-specific fields dropped
    std::vector<nghttp2_nv> nv;
    static const std::string kMethod = ":method", kScheme = ":scheme", kAuthority = ":authority", kPath = ":path",
                             kHttps = "https";
    auto add = [&nv](const std::string& n, const std::string& v) {
        nv.push_back(nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(n.data())),
                                reinterpret_cast<uint8_t*>(const_cast<char*>(v.data())), n.size(), v.size(),
                                NGHTTP2_NV_FLAG_NONE});
    };
    add(kMethod, req.method_string);
    add(kScheme, kHttps);
    add(kAuthority, authority);
    add(kPath, req.target);
    for (const auto& [n, v] : fields)
        if (n != "host") add(n, v);
    nghttp2_data_provider body{};
    body.read_callback = read_body;
    // From the head's framing (the body may already be parsed and waiting in the stream).
    const bool has_body = req.chunked() || (req.content_length() && *req.content_length() > 0);
    e->sid = nghttp2_submit_request(s_, nullptr, nv.data(), nv.size(), has_body ? &body : nullptr, e);
    if (e->sid < 0) {
        e->closed = true;
        e->st->reset();
    }
    wake();
}

void H2OriginSession::body_ready(int32_t handle) {
    if (Entry* e = by_handle(handle); e && e->sid > 0 && !e->closed) nghttp2_session_resume_data(s_, e->sid);
    wake();
}

// The origin's response head as HTTP/1.1 for the relay: its fields, framed by Content-Length
// when the origin sent one, else chunked (each DATA frame a chunk).
void H2OriginSession::response_head(Entry& e, bool end_stream) {
    const unsigned s = e.status;
    bool length = false;
    std::string head = "HTTP/1.1 " + std::to_string(s) + " " + std::string(http::obsolete_reason(http::status(s))) + "\r\n";
    for (const auto& [n, v] : e.fields) {
        if (n == "content-length") length = true;
        head.append(n).append(": ").append(v).append("\r\n");
    }
    const bool bodiless = e.head_request || s == 204 || s == 304;
    e.chunked = !bodiless && !length;
    if (e.chunked) head += "transfer-encoding: chunked\r\n";
    head += "\r\n";
    e.head_sent = true;
    e.fields.clear();
    e.st->push_request(head, 0);
    if (end_stream) end_response(e);
}

void H2OriginSession::end_response(Entry& e) {
    if (e.ended) return;
    e.ended = true;
    if (e.chunked) e.st->push_request("0\r\n\r\n", 0);
    e.st->end_request();
}

int H2OriginSession::on_header(nghttp2_session*, const nghttp2_frame* f, const uint8_t* name, size_t namelen,
                               const uint8_t* value, size_t valuelen, uint8_t, void* ud) {
    auto* c = self_of(ud);
    Entry* e = c->entry(f->hd.stream_id);
    if (!e || e->head_sent) return 0;  // trailers: not passed on
    const std::string_view n(reinterpret_cast<const char*>(name), namelen), v(reinterpret_cast<const char*>(value), valuelen);
    if (n == ":status") {
        e->status = 0;
        for (char ch : v) e->status = e->status * 10 + unsigned(ch - '0');
    } else if (!n.empty() && n.front() != ':') {
        e->fields.emplace_back(n, v);
    }
    return 0;
}

int H2OriginSession::on_frame_recv(nghttp2_session*, const nghttp2_frame* f, void* ud) {
    auto* c = self_of(ud);
    if (f->hd.type == NGHTTP2_GOAWAY) {
        c->goaway_ = true;  // no new streams; the ones below last_stream_id finish
        return 0;
    }
    Entry* e = f->hd.stream_id ? c->entry(f->hd.stream_id) : nullptr;
    if (!e) return 0;
    const bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;
    if (f->hd.type == NGHTTP2_HEADERS && !e->head_sent) {
        if (e->status >= 100 && e->status < 200) {  // interim (103 Early Hints): not passed on
            e->fields.clear();
            return 0;
        }
        c->response_head(*e, end);
    } else if (end && e->head_sent) {
        c->end_response(*e);
    }
    return 0;
}

int H2OriginSession::on_data_chunk(nghttp2_session* s, uint8_t, int32_t sid, const uint8_t* data, size_t len, void* ud) {
    auto* c = self_of(ud);
    Entry* e = c->entry(sid);
    if (!e || !e->head_sent) {
        nghttp2_session_consume(s, sid, len);
        return 0;
    }
    e->owed += len;
    const std::string_view bytes(reinterpret_cast<const char*>(data), len);
    e->st->push_data(bytes, e->chunked);
    return 0;
}

int H2OriginSession::on_stream_close(nghttp2_session* s, int32_t sid, uint32_t code, void* ud) {
    auto* c = self_of(ud);
    if (code == NGHTTP2_HTTP_1_1_REQUIRED) {
        // The origin wants this (e.g. connection-bound authentication) over HTTP/1.1: the
        // worker stops offering it h2 for a while, and the relay's retry goes over HTTP/1.1.
        if (http1_required().size() > 10000) http1_required().clear();  // bounded: forgetting costs a retry
        http1_required()[c->key_] = std::chrono::steady_clock::now() + kHttp1Required;
        c->retired_ = true;
    }
    Entry* e = c->entry(sid);
    if (!e) return 0;
    e->closed = true;
    if (e->owed) nghttp2_session_consume_connection(s, e->owed);
    e->owed = 0;
    if (!e->ended) e->st->reset();  // reset by the origin, or the connection failed: the relay sees it cut
    return 0;
}

ssize_t H2OriginSession::read_body(nghttp2_session* s, int32_t sid, uint8_t* buf, size_t length, uint32_t* flags,
                                   nghttp2_data_source*, void*) {
    auto* e = static_cast<Entry*>(nghttp2_session_get_stream_user_data(s, sid));
    if (!e) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    bool eof = false;
    const size_t n = e->st->take_body(buf, length, eof);
    if (eof) *flags |= NGHTTP2_DATA_FLAG_EOF;
    else if (n == 0) return NGHTTP2_ERR_DEFERRED;
    return ssize_t(n);
}

net::awaitable<void> H2OriginSession::reader(std::shared_ptr<H2OriginSession> keep) {
    (void)keep;  // the session lives while it reads
    std::vector<uint8_t> in(16 * 1024);
    while (!closing_) {
        tls_.next_layer().expires_never();
        auto [ec, n] = co_await tls_.async_read_some(net::buffer(in), use_nothrow);
        if (ec) break;
        count(counters_.bytes_in, n);
        if (nghttp2_session_mem_recv(s_, in.data(), n) < 0) break;
        wake();
        if (!nghttp2_session_want_read(s_) && !nghttp2_session_want_write(s_)) break;
    }
    close_all();
}

net::awaitable<void> H2OriginSession::writer(std::shared_ptr<H2OriginSession> keep) {
    (void)keep;
    std::string out;
    while (!closing_) {
        out.clear();
        wire::take_frames(s_, out, kWriteBatch);
        if (!out.empty()) {
            tls_.next_layer().expires_after(std::chrono::seconds(120));  // as timeouts.io's default
            auto [ec, n] = co_await net::async_write(tls_, net::buffer(out), use_nothrow);
            if (ec) break;
            continue;
        }
        // No stream for kIdle: the connection is closed, as an idle pooled HTTP/1.1 one would be.
        const auto deadline = entries_.empty() ? last_used_ + kIdle : std::chrono::steady_clock::time_point::max();
        if (entries_.empty() && std::chrono::steady_clock::now() >= deadline) {
            nghttp2_session_terminate_session(s_, NGHTTP2_NO_ERROR);
            wire::take_frames(s_, out, SIZE_MAX);
            tls_.next_layer().expires_after(std::chrono::seconds(2));
            co_await net::async_write(tls_, net::buffer(out), use_nothrow);
            break;
        }
        wake_.expires_at(deadline);
        co_await wake_.async_wait(use_nothrow);
        co_await net::post(tls_.get_executor(), net::use_awaitable);
    }
    writer_running_ = false;
    close_all();
}

// The connection is over: no new stream goes to it, the streams in flight see it cut.
void H2OriginSession::close_all() {
    if (!closing_) {
        closing_ = true;
        error_code ec;
        tls_.next_layer().socket().close(ec);
        wake();
    }
    if (shared_) {
        auto& r = registry();
        if (auto it = r.find(key_); it != r.end() && it->second.lock().get() == this) r.erase(it);
        shared_ = false;
    }
    for (auto& [h, e] : entries_)
        if (!e->ended) e->st->reset();
}

}  // namespace vigil::upstream

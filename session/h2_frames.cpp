// nghttp2's callbacks for a client's HTTP/2 connection (session/h2_connection.hpp): requests
// handed to transactions, bodies to their streams, and the limits against streams, headers and
// control frames that a client could otherwise use to make the gateway work or hold without bound.
#include "session/h2_connection.hpp"

namespace vigil::session::h2 {

// A request nghttp2 or the translation found malformed (the stream is reset with
// PROTOCOL_ERROR): counted, and recorded like any refused request.
void H2Connection::malformed(int32_t id, const std::string& why) {
    count(sv_.counters.h2_malformed);
    log_info("HTTP/2 stream " + std::to_string(id) + " malformed: " + why, base_.conn_id);
    TxAudit tx(sv_.audit, base_);
    tx.rec().scheme = "https";
    tx.rec().host = tunnel_.origin.host;
    tx.rec().port = tunnel_.origin.port;
    tx.page(page_for(Failure{Fail::bad_request, "malformed HTTP/2 request: " + why, tunnel_.origin.host_port()},
                     base_.conn_id));
}

void H2Connection::abuse(const char* what) {
    count(sv_.counters.h2_abuse);
    log_info(std::string("HTTP/2 connection ended (ENHANCE_YOUR_CALM): ") + what, base_.conn_id);
    nghttp2_session_terminate_session(s_, NGHTTP2_ENHANCE_YOUR_CALM);
}

// One control frame from the client: false once it sends them faster than the budget.
bool H2Connection::control_frame() {
    const auto now = std::chrono::steady_clock::now();
    tokens_ = std::min(kControlBurst, tokens_ + std::chrono::duration<double>(now - tokens_at_).count() * kControlPerSecond);
    tokens_at_ = now;
    if (tokens_ < 1) return false;
    tokens_ -= 1;
    return true;
}

int H2Connection::on_begin_headers(nghttp2_session* s, const nghttp2_frame* f, void* ud) {
    auto* c = self(ud);
    if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    // live_ counts transactions still running after their stream was reset: the bound holds
    // against rapid reset, where the client's view of open streams is always small.
    if (c->live_ >= c->sv_.cfg.http2.max_streams || c->closing_ || c->sv_.life.stopping) {
        count(c->sv_.counters.h2_refused_streams);
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_REFUSED_STREAM);
        if (++c->refused_ > kMaxRefused) c->abuse("streams opened while refused");
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    Entry& e = c->streams_[f->hd.stream_id];
    e.stream = std::make_shared<H2Stream>(c->client_.get_executor(), *c, f->hd.stream_id, false);
    return 0;
}

int H2Connection::on_header(nghttp2_session* s, const nghttp2_frame* f, const uint8_t* name, size_t namelen,
                            const uint8_t* value, size_t valuelen, uint8_t, void* ud) {
    auto* c = self(ud);
    Entry* e = c->find(f->hd.stream_id);
    if (!e || e->started) return 0;  // trailers: not forwarded (docs/http2.md)
    std::string error;
    const std::string_view n(reinterpret_cast<const char*>(name), namelen), v(reinterpret_cast<const char*>(value), valuelen);
    if (e->headers_done) return 0;
    if (!e->head.add(n, v, c->sv_.cfg.max_header_bytes, error)) {
        c->malformed(f->hd.stream_id, error);
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_PROTOCOL_ERROR);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    return 0;
}

int H2Connection::on_begin_frame(nghttp2_session*, const nghttp2_frame_hd* hd, void* ud) {
    auto* c = self(ud);
    if (hd->type == NGHTTP2_CONTINUATION) {
        if (Entry* e = c->find(hd->stream_id); e && ++e->continuations > kMaxContinuations) {
            c->abuse("a header block in too many CONTINUATION frames");
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
    }
    return 0;
}

int H2Connection::on_frame_recv(nghttp2_session*, const nghttp2_frame* f, void* ud) {
    auto* c = self(ud);
    switch (f->hd.type) {
        case NGHTTP2_HEADERS: {
            Entry* e = c->find(f->hd.stream_id);
            if (!e) return 0;
            const bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;
            if (f->headers.cat == NGHTTP2_HCAT_REQUEST) {
                e->headers_done = true;
                const bool sized = std::any_of(e->head.fields.begin(), e->head.fields.end(),
                                               [](const auto& p) { return p.first == "content-length"; });
                // Without a length, the body's framing waits for its first DATA frame: a GET
                // whose stream ends with an empty DATA frame has no body, not an empty chunked one.
                if (end || sized || e->head.too_large) c->start(*e, end);
            }
            if (end) c->end_request(*e);
            return 0;
        }
        case NGHTTP2_DATA:
            if (f->hd.flags & NGHTTP2_FLAG_END_STREAM) {
                if (Entry* e = c->find(f->hd.stream_id)) c->end_request(*e);
            }
            return 0;
        case NGHTTP2_SETTINGS:
        case NGHTTP2_PING:
            if (f->hd.flags & NGHTTP2_FLAG_ACK) return 0;
            [[fallthrough]];
        case NGHTTP2_PRIORITY:
        case NGHTTP2_WINDOW_UPDATE:
        case NGHTTP2_RST_STREAM:
            if (!c->control_frame()) c->abuse("control frames faster than the budget");
            return 0;
        default: return 0;
    }
}

int H2Connection::on_data_chunk(nghttp2_session* s, uint8_t, int32_t id, const uint8_t* data, size_t len, void* ud) {
    auto* c = self(ud);
    Entry* e = c->find(id);
    if (!e || e->done || !e->headers_done) {
        nghttp2_session_consume(s, id, len);  // nobody reads it: the window comes back at once
        return 0;
    }
    if (!e->started) c->start(*e, false);
    const std::string_view bytes(reinterpret_cast<const char*>(data), len);
    e->owed += len;
    e->stream->push_data(bytes, e->body == wire::H2Body::chunked);
    return 0;
}

int H2Connection::on_stream_close(nghttp2_session* s, int32_t id, uint32_t code, void* ud) {
    auto* c = self(ud);
    Entry* e = c->find(id);
    if (!e) return 0;
    e->closed = true;
    if (e->owed) nghttp2_session_consume_connection(s, e->owed);
    e->owed = 0;
    if (e->done || !e->started) {
        c->streams_.erase(id);
        return 0;
    }
    // Reset while its transaction runs: the relay's next wait on the stream fails (client_gone).
    if (code != NGHTTP2_NO_ERROR) count(c->sv_.counters.h2_resets);
    e->stream->reset();
    e->stream->cancel_turn();  // if it waits for an origin connection: it ends instead
    return 0;
}

// A complete response sent while the client is still sending its request: RST_STREAM(NO_ERROR)
// tells it to stop (RFC 9113 §8.1).
int H2Connection::on_frame_send(nghttp2_session* s, const nghttp2_frame* f, void* ud) {
    auto* c = self(ud);
    if ((f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS) && (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        if (Entry* e = c->find(f->hd.stream_id); e && !e->request_ended)
            nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_NO_ERROR);
    }
    return 0;
}

// nghttp2's own checks (RFC 9113 §8's HTTP messaging rules among them) refused a frame.
int H2Connection::on_invalid_frame(nghttp2_session*, const nghttp2_frame* f, int error, void* ud) {
    auto* c = self(ud);
    Entry* e = c->find(f->hd.stream_id);
    if (f->hd.type == NGHTTP2_HEADERS && e && !e->started &&
        (error == NGHTTP2_ERR_HTTP_HEADER || error == NGHTTP2_ERR_HTTP_MESSAGING)) {
        c->malformed(f->hd.stream_id, nghttp2_strerror(error));
    } else {
        count(c->sv_.counters.h2_malformed);
        log_info(std::string("HTTP/2 frame refused: ") + nghttp2_strerror(error), c->base_.conn_id);
    }
    return 0;
}

ssize_t H2Connection::read_body(nghttp2_session*, int32_t id, uint8_t* buf, size_t length, uint32_t* flags,
                                nghttp2_data_source*, void* ud) {
    Entry* e = self(ud)->find(id);
    if (!e) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    bool eof = false;
    const size_t n = e->stream->take_body(buf, length, eof);
    if (eof) *flags |= NGHTTP2_DATA_FLAG_EOF;
    else if (n == 0) return NGHTTP2_ERR_DEFERRED;
    return ssize_t(n);
}

}  // namespace vigil::session::h2

// The one request loop of a client connection, shared by plain HTTP and bumped tunnels: read
// each head (parking a quiet kept-alive connection), answer a refused head, count the request,
// and hand it to the connection's own step, which answers it and says what comes next.
#pragma once

#include <memory>

#include "session/services.hpp"
#include "session/tx_audit.hpp"
#include "wire/head_read.hpp"

namespace vigil::session {

// What a connection's step decided about the request it was given.
enum class Step {
    next,     // answered; read the next request
    stop,     // answered (or failed); the connection ends
    connect,  // a CONNECT: the loop returns its head to the accept phase
};

// A head that was refused before it was understood: answered in a coroutine of its own, so the
// record (a kilobyte) lives in its short frame, not in the loop's, which lasts as long as the
// connection. `origin`: the tunnel's, when the head came inside one.
template <class Stream>
net::awaitable<void> refused_head(Stream& s, Services& sv, const audit::Record& base, const Rejection& rejection,
                                  const Authority* origin) {
    TxAudit tx(sv.audit, base);
    if (origin) {
        tx.rec().host = origin->host;
        tx.rec().port = origin->port;
    }
    const Failure f = head_failure(sv.counters, rejection, origin ? origin->host_port() : "");
    const PageInfo page = page_for(f, base.conn_id);
    co_await send_page(s, sv.wire, page, 11, &tx);
}

// A request refused before it reached the relay (sign-in, target checks, the tunnel's origin
// failure): answered with its own record, in a frame of its own like refused_head.
template <class Stream>
net::awaitable<void> refused_request(Stream& s, Services& sv, const audit::Record& base,
                                     const http::request<http::buffer_body>& req, const PageInfo& page,
                                     const Authority* origin, const inspect::Verdict* verdict = nullptr) {
    TxAudit tx(sv.audit, base);
    tx.rec().method = std::string(req.method_string());
    if (origin) {
        tx.rec().scheme = "https";
        tx.rec().host = origin->host;
        tx.rec().port = origin->port;
        tx.rec().url = full_url("https", *origin, std::string(req.target()));
    } else {
        tx.rec().url = std::string(req.target()).substr(0, 2048);
    }
    if (verdict) tx.verdict(*verdict);
    co_await send_page(s, sv.wire, page, req.version(), &tx);
}

// Runs until the connection ends (null) or a CONNECT arrives (its head). `step(parser)` is an
// awaitable<Step>; `on_park()` lets go of what an idle connection need not hold.
template <class Stream, class OnPark, class StepFn>
net::awaitable<std::unique_ptr<RequestParser>> request_loop(Stream& s, beast::flat_buffer& buf, Services& sv,
                                                            SessionTrack& track, const audit::Record& base,
                                                            const Authority* origin, OnPark on_park, StepFn step) {
    for (bool first = true;; first = false) {
        if (sv.life.stopping && !first && buf.size() == 0) break;
        track.idle = buf.size() == 0;
        auto head = co_await next_request_head(s, buf, sv.wire, first, on_park);
        track.idle = false;
        if (head.status == HeadRead::closed || head.status == HeadRead::idle) break;
        if (head.status == HeadRead::rejected) {
            co_await refused_head(s, sv, base, head.rejection, origin);
            break;
        }
        count(sv.counters.requests);
        const Step next = co_await step(*head.parser);
        if (next == Step::connect) co_return std::move(head.parser);
        if (next == Step::stop) break;
    }
    co_return nullptr;
}

// The relay's services, from the session's.
inline RelayServices relay_services(Services& sv) {
    return RelayServices{sv.wire, sv.policy, sv.audit, sv.cache, sv.life.stopping};
}

// The phases after accept (accept.cpp calls them in this order).
net::awaitable<std::unique_ptr<RequestParser>> plain_requests(beast::tcp_stream& stream, beast::flat_buffer& buf,
                                                              Services& sv, SessionTrack& track, audit::Record& base,
                                                              const tcp::endpoint& remote, Throttle& throttle);
net::awaitable<void> connect_session(beast::tcp_stream& stream, beast::flat_buffer& buf,
                                     std::unique_ptr<RequestParser> connect, Services& sv, SessionTrack& track,
                                     audit::Record& base);

}  // namespace vigil::session

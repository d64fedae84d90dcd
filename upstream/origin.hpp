// One client connection's connection to its origin: made (or taken from the worker's pool) on
// demand, kept alive between requests to the same origin, dropped on any error, and handed to
// the pool when the client connection ends or goes quiet — if it is clean.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/beast/core/flat_buffer.hpp>

#include "upstream/connector.hpp"
#include "upstream/pool.hpp"

namespace vigil::upstream {

template <class Stream>
class OriginConnection {
public:
    // Opens a connection into the slot, or says why it could not.
    using Connect =
        std::function<net::awaitable<std::optional<Failure>>(const Authority&, std::optional<Stream>&, Route&)>;

    explicit OriginConnection(Connect connect) : connect_(std::move(connect)) {}

    // Starts with a connection made earlier (the bump connects before the first request).
    void adopt(std::optional<Stream> s, const Authority& origin, Route route) {
        stream_ = std::move(s);
        route_ = std::move(route);
        key_ = origin.host_port();
    }

    // Whether the connection can carry another request: open, the origin has not closed it and
    // sent nothing past the last response, neither read already (into the buffer, e.g. with a
    // short body's head) nor waiting in the stream or on the socket. Such bytes would
    // otherwise be taken as the answer to the next request.
    bool clean() {
        if (!stream_ || buf_.size() != 0) return false;
        if constexpr (on_socket<Stream>) return idle_stream_usable(*stream_);
        else if constexpr (requires(Stream& s) { s.idle_usable(); }) return stream_->idle_usable();
        return true;  // Beast's test stream: nothing arrives unasked
    }
    bool reusable_for(const Authority& origin) {
        if (http1_only_ && multiplexed()) return false;
        return key_ == origin.host_port() && clean();
    }
    // A stream on a shared HTTP/2 connection (then a request cut before any answer is retried).
    bool multiplexed() {
        if constexpr (requires(Stream& s) { s.is_h2(); }) return stream_ && stream_->is_h2();
        return false;
    }
    // The next request needs HTTP/1.1 (an Upgrade): no HTTP/2 connection for it.
    void require_http1(bool v) { http1_only_ = v; }

    // A new connection to `origin` (the old one closed); a failure when none could be made.
    // Callers first ask reusable_for(): a kept connection costs no coroutine.
    net::awaitable<std::optional<Failure>> connect(const Authority& origin) {
        drop();
        buf_.clear();
        route_.http1_only = http1_only_;
        auto failure = co_await connect_(origin, stream_, route_);
        if (!failure) key_ = origin.host_port();
        co_return failure;
    }

    // Closes the connection (and ends its count at a parent proxy).
    void drop() {
        stream_.reset();
        route_.lease.reset();
    }

    // After the last transaction: the connection, when it is idle and clean and carries no
    // connection-bound authentication, for another client.
    std::optional<Stream> release_idle(std::string& key, std::shared_ptr<ParentLease>& lease) {
        if (personal_ || !clean()) return std::nullopt;
        key = key_;
        lease = route_.lease;
        std::optional<Stream> out(std::move(*stream_));
        drop();
        return out;
    }

    // The client connection went quiet (parked): the connection is handed over like at the
    // session's end (or kept, when it may not be), and the read buffer is let go.
    std::optional<Stream> park(std::string& key, std::shared_ptr<ParentLease>& lease) {
        auto out = release_idle(key, lease);
        if (buf_.size() == 0) buf_.shrink_to_fit();
        return out;
    }

    Stream& stream() { return *stream_; }
    beast::flat_buffer& buffer() { return buf_; }  // bytes read from the origin, not yet relayed
    const Route& route() const { return route_; }
    // Connection-bound authentication (NTLM, Negotiate) seen: never handed to another client.
    void mark_personal() { personal_ = true; }
    bool personal() const { return personal_; }

private:
    Connect connect_;
    std::optional<Stream> stream_;
    std::string key_;  // host:port the connection goes to
    Route route_;      // how it was connected
    beast::flat_buffer buf_;
    bool personal_ = false;
    bool http1_only_ = false;
};

}  // namespace vigil::upstream

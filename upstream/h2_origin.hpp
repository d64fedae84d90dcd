// HTTP/2 to origins (docs/http2.md): a TLS connection whose origin chose h2 in ALPN carries the
// requests of many client transactions at once, as streams; each worker keeps one such
// connection per origin (verified cleanly, direct) for every transaction of the worker. The
// relay speaks HTTP/1.1 to an OriginStream either way: a TLS connection of its own, or a stream
// on a shared HTTP/2 connection (wire/h2_stream.hpp translates).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/async_result.hpp>

#include "io/tls_stream.hpp"
#include "upstream/connector.hpp"
#include "wire/h2_stream.hpp"

namespace vigil::upstream {

class H2OriginSession;  // h2_origin.cpp

class OriginStream {
public:
    using executor_type = net::any_io_executor;
    explicit OriginStream(TlsStream tls) : tls_(std::move(tls)) {}
    OriginStream(std::shared_ptr<H2OriginSession> session, std::shared_ptr<wire::H2OriginStream> stream);
    OriginStream(OriginStream&&) noexcept;
    OriginStream& operator=(OriginStream&&) noexcept;
    ~OriginStream();

    executor_type get_executor() { return h2_ ? h2_->get_executor() : executor_type(tls_->get_executor()); }
    bool is_h2() const { return h2_ != nullptr; }
    TlsStream& tls() { return *tls_; }  // HTTP/1.1 only
    SSL* ssl();                         // the TLS connection underneath (for the audit record)
    // Whether it can carry another request: an idle HTTP/1.1 connection the origin has not
    // closed, or an HTTP/2 stream no request was written to yet.
    bool idle_usable();

    void expires_after(std::chrono::steady_clock::duration d) {
        if (h2_) h2_->expires_after(d);
        else tls_->next_layer().expires_after(d);
    }
    void expires_at(std::chrono::steady_clock::time_point t) {
        if (h2_) h2_->expires_at(t);
        else tls_->next_layer().expires_at(t);
    }
    void cancel() {
        if (h2_) h2_->cancel();
        else tls_->next_layer().socket().cancel();
    }

    template <class Buffers, class Token>
    auto async_read_some(const Buffers& buffers, Token&& token) {
        return net::async_initiate<Token, void(error_code, std::size_t)>(
            [this](auto handler, const Buffers& b) {
                if (h2_) h2_->async_read_some(b, std::move(handler));
                else tls_->async_read_some(b, std::move(handler));
            },
            token, buffers);
    }
    template <class Buffers, class Token>
    auto async_write_some(const Buffers& buffers, Token&& token) {
        used_ = true;
        return net::async_initiate<Token, void(error_code, std::size_t)>(
            [this](auto handler, const Buffers& b) {
                if (h2_) h2_->async_write_some(b, std::move(handler));
                else tls_->async_write_some(b, std::move(handler));
            },
            token, buffers);
    }

private:
    void release();
    std::optional<TlsStream> tls_;
    std::shared_ptr<H2OriginSession> session_;
    std::shared_ptr<wire::H2OriginStream> h2_;
    bool used_ = false;
};

// A connection for one request: a stream on this worker's HTTP/2 connection to `origin` when
// one is open, else a new verified TLS connection (connect_tls) offering h2 unless
// `route->http1_only` or tls.origin_alpn says not — HTTP/2 if the origin chooses it.
net::awaitable<std::optional<Failure>> connect_origin(Connector& up, const Authority& origin,
                                                      std::optional<OriginStream>& out, uint64_t cid,
                                                      bool continued = false, std::string* accepted = nullptr,
                                                      Route* route = nullptr);

// Hands an idle origin connection to the worker's pool (HTTP/1.1), or lets go of a stream.
void pool_idle(std::optional<OriginStream> idle, std::string key, std::shared_ptr<ParentLease> lease, bool stopping);

}  // namespace vigil::upstream

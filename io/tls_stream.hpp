// Internal: a TLS stream that runs OpenSSL on the socket itself.
//
// Asio's ssl::stream moves every TLS byte through a BIO pair and two 17 KiB buffers of its
// own, with a composed operation per socket read or write (perf: BIO calls, ERR_clear_error,
// copies and per-operation work were a tenth of a keep-alive request's CPU, and a third of
// the bulk path was copies). Here OpenSSL's BIO reads the socket directly (non-blocking) into
// its own record buffer, and what OpenSSL writes is sent once per call, so a request or a
// response is one recv and one send in the common case.
//
// Waits go through the beast::tcp_stream underneath, so its expires_after() timeouts apply to
// every wait (reading into a per-connection buffer that OpenSSL then takes bytes from, and
// writing what the socket did not take at once). A write completes only when the socket has
// taken its bytes (backpressure as before). Reads never wait to write: what OpenSSL
// produces while reading (an alert) is sent if the socket takes it, else with the next write.
// One read and one write may be in flight at once (as with Asio's stream); all operations of
// a stream run on its executor's single thread.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include <openssl/ssl.h>

#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream_base.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include "io/tls_core.hpp"

namespace vigil::io {

class TlsStream {
public:
    using executor_type = boost::beast::tcp_stream::executor_type;
    using next_layer_type = boost::beast::tcp_stream;
    using handshake_type = boost::asio::ssl::stream_base::handshake_type;

    TlsStream(boost::beast::tcp_stream&& s, boost::asio::ssl::context& ctx)
        : core_(std::make_unique<tls_io::Core>(std::move(s), ctx.native_handle())) {}

    executor_type get_executor() noexcept { return core_->tcp.get_executor(); }
    boost::beast::tcp_stream& next_layer() noexcept { return core_->tcp; }
    SSL* native_handle() noexcept { return core_->ssl; }

    // Whether an idle kept-alive connection can carry another request. OpenSSL first takes what
    // the socket holds without waiting: TLS 1.3 session tickets the server sent after the
    // handshake are processed, not mistaken for stray bytes. Application data, a partial record,
    // a close or an error mean it cannot.
    bool idle_usable();

    // Frees the read buffer while nothing waits in it (an idle connection); the next read
    // allocates it again. OpenSSL's record buffers go too, and stay released while the
    // connection is parked (SSL_MODE_RELEASE_BUFFERS until bytes arrive): a busy connection
    // keeps them between records, where taking and freeing them for every record had been
    // 3.6% of a keep-alive request's CPU.
    void release_idle_buffers();

    template <class Buffers, class Token>
    auto async_read_some(const Buffers& buffers, Token&& token) {
        boost::asio::mutable_buffer first;
        for (auto it = boost::asio::buffer_sequence_begin(buffers); it != boost::asio::buffer_sequence_end(buffers); ++it) {
            first = boost::asio::mutable_buffer(*it);
            if (first.size()) break;
        }
        auto step = [b = first](tls_io::Core& c, std::size_t& done, tls_io::error_code& ec) {
            return b.size() ? c.read(b.data(), b.size(), done, ec) : tls_io::Want::nothing;
        };
        return start<true>(std::move(step), false, std::forward<Token>(token));
    }

    template <class Buffers, class Token>
    auto async_write_some(const Buffers& buffers, Token&& token) {
        auto step = [buffers](tls_io::Core& c, std::size_t& done, tls_io::error_code& ec) {
            auto b = tls_io::contiguous(buffers);
            return b.size() ? c.write(b.data(), b.size(), done, ec) : tls_io::Want::nothing;
        };
        return start<true>(std::move(step), true, std::forward<Token>(token));
    }

    template <class Token>
    auto async_handshake(handshake_type type, Token&& token) {
        set_role(type);
        return start<false>(handshake_step(), true, std::forward<Token>(token));
    }

    // With bytes already read from the socket (the ClientHello): all of them are taken.
    template <class Token>
    auto async_handshake(handshake_type type, boost::asio::const_buffer already, Token&& token) {
        set_role(type);
        core_->feed(already.data(), already.size());
        return start<true>(handshake_step(), true, std::forward<Token>(token), already.size());
    }

    // Sends close_notify; does not wait for the peer's.
    template <class Token>
    auto async_shutdown(Token&& token) {
        auto step = [](tls_io::Core& c, std::size_t&, tls_io::error_code& ec) { return c.shutdown(ec); };
        return start<false>(std::move(step), true, std::forward<Token>(token));
    }

private:
    void set_role(handshake_type type);
    static auto handshake_step() {
        return [](tls_io::Core& c, std::size_t&, tls_io::error_code& ec) { return c.handshake(ec); };
    }

    template <bool Sized, class Step, class Token>
    auto start(Step step, bool flush, Token&& token, std::size_t done = 0) {
        using Sig = std::conditional_t<Sized, void(tls_io::error_code, std::size_t), void(tls_io::error_code)>;
        // No work guard of its own: the socket operation or post it waits on keeps the
        // io_context running (a guard copied the any_io_executor twice per operation).
        return boost::asio::async_compose<Token, Sig>(tls_io::Op<Step, Sized>(*core_, std::move(step), flush, done),
                                                      token);
    }

    std::unique_ptr<tls_io::Core> core_;  // stable for the BIO while the stream moves
};

}  // namespace vigil::io

// Internal to io/tls_stream.hpp: the per-connection OpenSSL state (Core), the composed
// operation that drives one SSL call over the socket (Op), and the write gatherer.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include <openssl/ssl.h>

#include <boost/asio/buffer.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/coroutine.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream_base.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/tcp_stream.hpp>

namespace vigil::io {

namespace tls_io {

namespace net = boost::asio;
namespace beast = boost::beast;
using error_code = boost::system::error_code;

// What an SSL call needs before it can go on.
enum class Want { nothing, input };

struct Core {
    Core(beast::tcp_stream&& s, SSL_CTX* ctx);
    ~Core();
    Core(const Core&) = delete;
    Core& operator=(const Core&) = delete;

    // One SSL call each; `ec` is set when the stream failed.
    Want read(void* data, std::size_t size, std::size_t& got, error_code& ec);
    Want write(const void* data, std::size_t size, std::size_t& put, error_code& ec);
    Want handshake(error_code& ec);
    Want shutdown(error_code& ec);

    // Bytes OpenSSL wrote that the socket has not taken: moves them to `flushing` for one
    // socket write; false when there are none.
    bool begin_flush();
    // Where a wait reads to, and how many bytes it read.
    net::mutable_buffer in_space();
    void received(std::size_t n);
    void feed(const void* data, std::size_t size);  // bytes read before the handshake

    // Called by the BIO.
    void output(const char* data, std::size_t size);
    int input(char* data, std::size_t size, std::size_t& got);  // 1 read, 0 end or error, -1 nothing yet

    beast::tcp_stream tcp;
    SSL* ssl = nullptr;
    std::unique_ptr<char[]> in;  // read while waiting, not yet taken by OpenSSL
    // Parked (release_idle_buffers): the wait reads into this small array, and `in` is taken
    // again only when bytes arrive, so an idle connection's wait holds no 17 KiB buffer.
    bool lean = false, reading_lean = false;
    char lean_buf[128];
    std::size_t in_cap = 0, in_begin = 0, in_end = 0;
    std::string out;       // written by OpenSSL, not yet taken by the socket
    std::string flushing;  // in a socket write now
    bool eof = false;      // the peer closed its side (TCP)
    error_code deferred;   // met after bytes a read returned: the next read's result
    int read_errno = 0, write_errno = 0;

private:
    void send_staged();
    Want failed(int ret, error_code& ec);
};

// One SSL call, repeated after each wait for input, then the output flushed (unless a read).
// Completes through a post when no I/O was waited for, never inside the initiating call.
template <class Step, bool Sized>
class Op {
public:
    Op(Core& c, Step step, bool flush, std::size_t done = 0) : c_(&c), step_(std::move(step)), flush_(flush), done_(done) {}

    template <class Self>
    void operator()(Self& self, error_code ec = {}, std::size_t n = 0) {
        BOOST_ASIO_CORO_REENTER(coro_) {
            for (;;) {
                want_ = step_(*c_, done_, result_);
                while (flush_ && c_->begin_flush()) {
                    waited_ = true;
                    BOOST_ASIO_CORO_YIELD net::async_write(c_->tcp, net::buffer(c_->flushing), std::move(self));
                    std::string().swap(c_->flushing);  // the socket was full: nothing kept for an idle connection
                    if (ec) {
                        c_->out.clear();
                        if (!result_) result_ = ec;
                    }
                }
                if (result_ || want_ != Want::input) break;
                waited_ = true;
                BOOST_ASIO_CORO_YIELD c_->tcp.async_read_some(c_->in_space(), std::move(self));
                if (ec == net::error::eof) {
                    c_->eof = true;  // OpenSSL sees it on its next read
                } else if (ec) {
                    result_ = ec;
                    break;
                } else {
                    c_->received(n);
                }
            }
            if (!waited_) {
                BOOST_ASIO_CORO_YIELD net::post(c_->tcp.get_executor(), std::move(self));
            }
            if constexpr (Sized) {
                self.complete(result_, done_);
            } else {
                self.complete(result_);
            }
        }
    }

private:
    Core* c_;
    Step step_;
    bool flush_;
    std::size_t done_;
    error_code result_;
    Want want_ = Want::nothing;
    bool waited_ = false;
    net::coroutine coro_;
};

// A buffer sequence as one contiguous piece for one SSL_write: the first buffer alone when
// the sequence is one buffer, else the buffers copied into a per-thread scratch (a response
// head is dozens of small pieces), up to kMaxWrite bytes.
inline constexpr std::size_t kMaxWrite = 64 * 1024;
std::string& write_scratch();

template <class Buffers>
net::const_buffer contiguous(const Buffers& buffers) {
    auto it = net::buffer_sequence_begin(buffers), end = net::buffer_sequence_end(buffers);
    while (it != end && net::const_buffer(*it).size() == 0) ++it;
    if (it == end) return {};
    net::const_buffer first(*it);
    auto next = it;
    ++next;
    while (next != end && net::const_buffer(*next).size() == 0) ++next;
    if (next == end || first.size() >= kMaxWrite) return net::buffer(first, kMaxWrite);
    std::string& s = write_scratch();
    s.clear();
    for (; it != end && s.size() < kMaxWrite; ++it) {
        net::const_buffer b(*it);
        s.append(static_cast<const char*>(b.data()), std::min(b.size(), kMaxWrite - s.size()));
    }
    return net::buffer(s);
}

}  // namespace tls_io

}  // namespace vigil::io

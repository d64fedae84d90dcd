#include "io/tls_stream.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>
#include <stdexcept>
#include <utility>

#include <openssl/err.h>

#include <boost/asio/ssl/error.hpp>

namespace vigil::io {

namespace tls_io {

namespace {

constexpr std::size_t kInBuffer = 17 * 1024;  // one TLS record and its header

// Read buffers come from a small per-thread free list: an idle (parked) connection gives its
// buffer back, and the next connection takes it, instead of 17 KiB blocks being freed to the
// heap between long-lived small objects (frames, SSL objects), where they stayed resident.
std::vector<std::unique_ptr<char[]>>& free_in_buffers() {
    thread_local std::vector<std::unique_ptr<char[]>> free;
    return free;
}

std::unique_ptr<char[]> take_in_buffer() {
    auto& free = free_in_buffers();
    if (free.empty()) return std::unique_ptr<char[]>(new char[kInBuffer]);  // not zeroed
    auto b = std::move(free.back());
    free.pop_back();
    return b;
}

void give_in_buffer(std::unique_ptr<char[]> b, std::size_t cap) {
    constexpr std::size_t kKeep = 64;
    auto& free = free_in_buffers();
    if (b && cap == kInBuffer && free.size() < kKeep) free.push_back(std::move(b));
}

// What one SSL call wrote, sent with one send() right after the call. Per thread: every
// stream of a worker runs on that worker's thread, and the buffer is empty between calls.
thread_local std::string staged;

int bio_write(BIO* b, const char* data, size_t size, size_t* written) {
    BIO_clear_retry_flags(b);
    static_cast<Core*>(BIO_get_data(b))->output(data, size);
    *written = size;
    return 1;
}

int bio_read(BIO* b, char* data, size_t size, size_t* got) {
    BIO_clear_retry_flags(b);
    const int r = static_cast<Core*>(BIO_get_data(b))->input(data, size, *got);
    if (r < 0) BIO_set_retry_read(b);
    return r > 0 ? 1 : 0;
}

long bio_ctrl(BIO* b, int cmd, long, void*) {
    auto* c = static_cast<Core*>(BIO_get_data(b));
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;
    case BIO_CTRL_PENDING:
        return static_cast<long>(c->in_end - c->in_begin);
    case BIO_CTRL_WPENDING:
        return static_cast<long>(c->out.size() + c->flushing.size());
    case BIO_CTRL_EOF:
        return c->eof && c->in_end == c->in_begin ? 1 : 0;
    default:
        return 0;
    }
}

BIO_METHOD* socket_method() {
    static BIO_METHOD* method = [] {
        BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "vigil socket");
        if (!m || BIO_meth_set_write_ex(m, bio_write) != 1 || BIO_meth_set_read_ex(m, bio_read) != 1 ||
            BIO_meth_set_ctrl(m, bio_ctrl) != 1)
            throw std::runtime_error("cannot create the TLS socket BIO method");
        return m;
    }();
    return method;
}

// OpenSSL's error queue must be empty before an SSL call for SSL_get_error to be right.
// ERR_clear_error walks all 16 slots of the thread's queue even when it is empty (3% of the
// bulk path's CPU, once per SSL call); a peek says whether there is anything to clear.
void clear_errors() {
    if (ERR_peek_error() != 0) ERR_clear_error();
}

}  // namespace

std::string& write_scratch() {
    thread_local std::string scratch;
    return scratch;
}

Core::Core(beast::tcp_stream&& s, SSL_CTX* ctx) : tcp(std::move(s)) {
    ssl = SSL_new(ctx);
    BIO* bio = ssl ? BIO_new(socket_method()) : nullptr;
    if (!bio) {
        SSL_free(ssl);
        throw std::runtime_error("cannot create a TLS connection (out of memory)");
    }
    BIO_set_data(bio, this);
    BIO_set_init(bio, 1);
    SSL_set_bio(ssl, bio, bio);
    // One recv takes whatever the socket holds (several records), not a header then a body.
    SSL_set_read_ahead(ssl, 1);
    SSL_set_mode(ssl, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
}

Core::~Core() {
    SSL_free(ssl);
    give_in_buffer(std::move(in), in_cap);
}

void Core::output(const char* data, std::size_t size) {
    // Behind bytes still waiting for the socket, or staged for one send after the call.
    (out.empty() && flushing.empty() ? staged : out).append(data, size);
}

int Core::input(char* data, std::size_t size, std::size_t& got) {
    got = 0;
    if (in_end > in_begin) {
        got = std::min(size, in_end - in_begin);
        std::memcpy(data, in.get() + in_begin, got);
        in_begin += got;
        return 1;
    }
    if (eof || read_errno) return 0;
    for (;;) {
        ssize_t n = ::recv(tcp.socket().native_handle(), data, size, MSG_DONTWAIT);
        if (n > 0) {
            got = static_cast<std::size_t>(n);
            return 1;
        }
        if (n == 0) {
            eof = true;
            return 0;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return -1;
        read_errno = errno;
        return 0;
    }
}

void Core::send_staged() {
    if (staged.empty()) return;
    std::size_t sent = 0;
    while (sent < staged.size() && !write_errno) {
        ssize_t n = ::send(tcp.socket().native_handle(), staged.data() + sent, staged.size() - sent,
                           MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n >= 0) {
            sent += static_cast<std::size_t>(n);
        } else if (errno != EINTR) {
            if (errno != EAGAIN && errno != EWOULDBLOCK) write_errno = errno;
            break;
        }
    }
    if (!write_errno && sent < staged.size()) out.append(staged, sent, std::string::npos);
    staged.clear();
}

bool Core::begin_flush() {
    if (out.empty() || !flushing.empty()) return false;
    flushing.swap(out);
    return true;
}

void Core::received(std::size_t n) {
    if (reading_lean) {
        reading_lean = lean = false;
        SSL_clear_mode(ssl, SSL_MODE_RELEASE_BUFFERS);  // busy again: OpenSSL keeps its buffers
        in = take_in_buffer();
        in_cap = kInBuffer;
        std::memcpy(in.get(), lean_buf, n);
        in_begin = 0;
        in_end = n;
        return;
    }
    in_end += n;
}

net::mutable_buffer Core::in_space() {
    if (!in && lean) {
        reading_lean = true;
        return net::buffer(lean_buf, sizeof lean_buf);
    }
    reading_lean = false;
    if (!in) {
        in = take_in_buffer();
        in_cap = kInBuffer;
    }
    if (in_begin == in_end) {
        in_begin = in_end = 0;
    } else if (in_end == in_cap) {
        std::memmove(in.get(), in.get() + in_begin, in_end - in_begin);
        in_end -= in_begin;
        in_begin = 0;
    }
    return net::buffer(in.get() + in_end, in_cap - in_end);
}

void Core::feed(const void* data, std::size_t size) {
    const std::size_t cap = std::max(kInBuffer, size);
    if (in_cap < cap) {
        give_in_buffer(std::move(in), in_cap);
        in = cap == kInBuffer ? take_in_buffer() : std::unique_ptr<char[]>(new char[cap]);
        in_cap = cap;
    }
    std::memcpy(in.get(), data, size);
    in_begin = 0;
    in_end = size;
}

Want Core::failed(int ret, error_code& ec) {
    const int err = SSL_get_error(ssl, ret);
    if (err == SSL_ERROR_WANT_READ) return Want::input;
    const bool closed_cleanly = (SSL_get_shutdown(ssl) & SSL_RECEIVED_SHUTDOWN) != 0;
    if (err == SSL_ERROR_ZERO_RETURN) {
        ec = net::error::eof;  // close_notify
    } else if (eof && ERR_peek_error() == 0) {
        ec = closed_cleanly ? error_code(net::error::eof) : error_code(net::ssl::error::stream_truncated);
    } else if (eof && ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        ERR_clear_error();
        ec = net::ssl::error::stream_truncated;  // TCP closed without close_notify
    } else if (err == SSL_ERROR_SYSCALL && read_errno) {
        ec = error_code(read_errno, boost::system::system_category());
    } else if (err == SSL_ERROR_SYSCALL && write_errno) {
        ec = error_code(write_errno, boost::system::system_category());
    } else if (unsigned long e = ERR_get_error()) {
        ec = error_code(static_cast<int>(e), net::error::get_ssl_category());
    } else {
        ec = net::ssl::error::unspecified_system_error;
    }
    return Want::nothing;
}

Want Core::read(void* data, std::size_t size, std::size_t& got, error_code& ec) {
    if (deferred) {
        ec = std::exchange(deferred, {});
        return Want::nothing;
    }
    clear_errors();
    std::size_t n = 0;
    int ok = SSL_read_ex(ssl, data, size, &n);
    Want w = Want::nothing;
    if (ok != 1) {
        w = failed(ok, ec);
    } else {
        got = n;
        // Records already begun in OpenSSL's read-ahead buffer fill the rest of the caller's
        // buffer: one operation per buffer on a bulk transfer, not one per 16 KiB record.
        while (got < size && (SSL_has_pending(ssl) || in_end > in_begin)) {
            clear_errors();
            ok = SSL_read_ex(ssl, static_cast<char*>(data) + got, size - got, &n);
            if (ok != 1) {
                failed(ok, deferred);  // an error after these bytes ends the next read
                break;
            }
            got += n;
        }
    }
    send_staged();  // an alert OpenSSL wrote: sent if the socket takes it now, else with the next write
    return w;
}

Want Core::write(const void* data, std::size_t size, std::size_t& put, error_code& ec) {
    clear_errors();
    std::size_t n = 0;
    const int ok = SSL_write_ex(ssl, data, size, &n);
    Want w = Want::nothing;
    if (ok == 1)
        put = n;
    else
        w = failed(ok, ec);
    send_staged();
    if (!ec && write_errno) ec = error_code(write_errno, boost::system::system_category());
    return w;
}

Want Core::handshake(error_code& ec) {
    clear_errors();
    const int r = SSL_do_handshake(ssl);
    Want w = r == 1 ? Want::nothing : failed(r, ec);
    send_staged();
    if (!ec && write_errno) ec = error_code(write_errno, boost::system::system_category());
    return w;
}

Want Core::shutdown(error_code& ec) {
    clear_errors();
    if (!SSL_in_init(ssl)) SSL_shutdown(ssl);  // close_notify; the peer's is not waited for
    clear_errors();
    send_staged();
    if (write_errno) ec = error_code(write_errno, boost::system::system_category());
    return Want::nothing;
}

}  // namespace tls_io

void TlsStream::release_idle_buffers() {
    auto& c = *core_;
    if (c.in && c.in_begin == c.in_end) {
        tls_io::give_in_buffer(std::move(c.in), c.in_cap);
        c.in.reset();
        c.in_cap = c.in_begin = c.in_end = 0;
        c.lean = true;
    }
    if (c.out.empty()) std::string().swap(c.out);
    if (c.flushing.empty()) std::string().swap(c.flushing);
    if (c.lean) {
        SSL_set_mode(c.ssl, SSL_MODE_RELEASE_BUFFERS);  // until the parked wait reads (Core::received)
        SSL_free_buffers(c.ssl);  // refuses while a record is partly read or written: freed later then
    }
}

bool TlsStream::idle_usable() {
    tls_io::Core& c = *core_;
    if (c.deferred || c.eof || c.in_end > c.in_begin || SSL_in_init(c.ssl)) return false;
    char byte;
    std::size_t got = 0;
    tls_io::error_code ec;
    const tls_io::Want w = c.read(&byte, 1, got, ec);
    return !ec && got == 0 && w == tls_io::Want::input && !SSL_has_pending(c.ssl) && c.in_end == c.in_begin && !c.eof;
}

void TlsStream::set_role(handshake_type type) {
    if (type == boost::asio::ssl::stream_base::server)
        SSL_set_accept_state(core_->ssl);
    else
        SSL_set_connect_state(core_->ssl);
}

}  // namespace vigil::io

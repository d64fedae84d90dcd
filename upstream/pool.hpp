// The worker's pool of idle origin connections, and whether an idle connection is still usable.
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "io/tls_stream.hpp"
#include "upstream/parents.hpp"

namespace vigil::upstream {

using io::TlsStream;
namespace beast = boost::beast;

// Whether an idle kept-alive connection can carry another request: the origin has neither
// closed it nor sent anything unasked-for since the last response.
bool idle_socket_usable(int fd);
inline bool idle_stream_usable(beast::tcp_stream& s) { return idle_socket_usable(s.socket().native_handle()); }
inline bool idle_stream_usable(TlsStream& s) { return s.idle_usable(); }

// Idle origin TLS connections of one worker thread, kept after a client connection ended so
// the next client connection to the same origin skips the TCP and TLS handshakes. Only
// connections whose chain verified cleanly and that carry no connection-bound
// authentication (NTLM, Negotiate) are kept; at most kMax, none idle longer than kMaxIdle,
// and each is checked for a close from the origin before it is used again. One pool per
// worker thread (a connection belongs to its worker's io_context), set up by the worker.
class UpstreamPool {
public:
    static constexpr size_t kMax = 64;
    static constexpr std::chrono::seconds kMaxIdle{15};
    // A connection to `key`, with its parent lease (if it went through a parent) into `lease`.
    std::optional<TlsStream> take(const std::string& key, std::shared_ptr<ParentLease>& lease);
    void give(const std::string& key, TlsStream stream, std::shared_ptr<ParentLease> lease);
    // Closes the connections idle longer than kMaxIdle (the worker calls it every second).
    void prune();
    size_t size() const { return idle_.size(); }
    // The pool of the calling worker thread, or null (other threads, e.g. at shutdown).
    static UpstreamPool*& current();

private:
    struct Idle {
        std::string key;
        std::chrono::steady_clock::time_point since;
        TlsStream stream;
        std::shared_ptr<ParentLease> lease;
    };
    std::deque<Idle> idle_;  // oldest first
};

// Gives a bumped tunnel's idle origin connection to the worker's pool — only when its chain
// verified cleanly (nothing an exception, pin or "continue" accepted) and nothing the origin
// sent waits inside TLS for the next client to read as its own.
void pool_idle(std::optional<TlsStream> idle, std::string key, std::shared_ptr<ParentLease> lease, bool stopping);

}  // namespace vigil::upstream

// The worker's pool of idle origin connections (upstream/pool.hpp).
#include "upstream/pool.hpp"

#include <sys/socket.h>

#include <cerrno>

#include "tls/contexts.hpp"

namespace vigil::upstream {

UpstreamPool*& UpstreamPool::current() {
    thread_local UpstreamPool* pool = nullptr;
    return pool;
}

bool idle_socket_usable(int fd) {
    // Closed by the origin meanwhile (EOF, or a TLS close_notify), or something unasked-for
    // waiting: not reusable. Nothing waiting (EAGAIN) is the only good answer.
    char byte;
    const ssize_t n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

std::optional<TlsStream> UpstreamPool::take(const std::string& key, std::shared_ptr<ParentLease>& lease) {
    const auto now = std::chrono::steady_clock::now();
    for (auto it = idle_.end(); it != idle_.begin();) {
        --it;
        if (it->key != key) continue;
        Idle found = std::move(*it);
        idle_.erase(it);
        if (now - found.since > kMaxIdle) return std::nullopt;
        if (!idle_stream_usable(found.stream)) return std::nullopt;
        lease = std::move(found.lease);
        return std::optional<TlsStream>(std::move(found.stream));
    }
    return std::nullopt;
}

void UpstreamPool::give(const std::string& key, TlsStream stream, std::shared_ptr<ParentLease> lease) {
    const auto now = std::chrono::steady_clock::now();
    while (!idle_.empty() && (idle_.size() >= kMax || now - idle_.front().since > kMaxIdle)) idle_.pop_front();
    stream.release_idle_buffers();
    idle_.push_back(Idle{key, now, std::move(stream), std::move(lease)});
}

void pool_idle(std::optional<TlsStream> idle, std::string key, std::shared_ptr<ParentLease> lease, bool stopping) {
    UpstreamPool* pool = UpstreamPool::current();
    if (!idle || !pool || stopping) return;
    SSL* up = idle->native_handle();
    if (tls::accepted_problems(up).empty() && !SSL_has_pending(up) && BIO_ctrl_pending(SSL_get_rbio(up)) == 0)
        pool->give(key, std::move(*idle), std::move(lease));
}

void UpstreamPool::prune() {
    const auto now = std::chrono::steady_clock::now();
    while (!idle_.empty() && now - idle_.front().since > kMaxIdle) idle_.pop_front();
}

}  // namespace vigil::upstream

// The connection one request uses (upstream/h2_origin.hpp): its own TLS connection, or a
// stream on the worker's HTTP/2 connection to the origin; and how one is made.
#include "upstream/h2_origin_session.hpp"
#include "upstream/pool.hpp"

namespace vigil::upstream {

OriginStream::OriginStream(std::shared_ptr<H2OriginSession> session, std::shared_ptr<wire::H2OriginStream> stream)
    : session_(std::move(session)), h2_(std::move(stream)) {}
OriginStream::OriginStream(OriginStream&& o) noexcept
    : tls_(std::move(o.tls_)), session_(std::move(o.session_)), h2_(std::move(o.h2_)), used_(o.used_) {
    o.tls_.reset();
}
OriginStream& OriginStream::operator=(OriginStream&& o) noexcept {
    if (this != &o) {
        release();
        tls_ = std::move(o.tls_);
        o.tls_.reset();
        session_ = std::move(o.session_);
        h2_ = std::move(o.h2_);
        used_ = o.used_;
    }
    return *this;
}
OriginStream::~OriginStream() { release(); }

void OriginStream::release() {
    if (session_ && h2_) session_->forget(h2_->id());
    session_.reset();
    h2_.reset();
}

SSL* OriginStream::ssl() { return session_ ? session_->ssl() : tls_->native_handle(); }

bool OriginStream::idle_usable() {
    if (h2_) return !used_ && !h2_->is_reset() && session_->usable();
    return tls_->idle_usable();
}

net::awaitable<std::optional<Failure>> connect_origin(Connector& up, const Authority& origin,
                                                      std::optional<OriginStream>& out, uint64_t cid, bool continued,
                                                      std::string* accepted, Route* route) {
    Route own;
    if (!route) route = &own;
    out.reset();
    bool h2 = up.cfg.origin_h2 && !route->http1_only && !route->http;
    auto& required = H2OriginSession::http1_required();
    if (auto it = required.find(origin.host_port()); h2 && it != required.end()) {
        if (std::chrono::steady_clock::now() < it->second) h2 = false;
        else required.erase(it);
    }
    if (h2) {
        auto& r = H2OriginSession::registry();
        if (auto it = r.find(origin.host_port()); it != r.end()) {
            if (auto s = it->second.lock(); s && s->usable()) {
                out.emplace(s, s->open_stream());
                if (accepted) accepted->clear();
                co_return std::nullopt;
            }
        }
    }
    route->offer_h2 = h2;
    std::optional<TlsStream> tls;
    std::string what;
    if (auto failure = co_await connect_tls(up, origin, tls, cid, continued, &what, route)) co_return failure;
    if (accepted) *accepted = what;
    const unsigned char* p = nullptr;
    unsigned len = 0;
    SSL_get0_alpn_selected(tls->native_handle(), &p, &len);
    if (!(h2 && len == 2 && p[0] == 'h' && p[1] == '2')) {
        out.emplace(std::move(*tls));
        co_return std::nullopt;
    }
    // Shared with the worker's other transactions only when verified cleanly and direct (as
    // the pool of HTTP/1.1 connections keeps only those).
    const bool shared = what.empty() && !route->lease;
    auto session = std::make_shared<H2OriginSession>(std::move(*tls), origin.host_port(), up.counters, cid);
    if (!session->start(shared))
        co_return fail(up.counters, Fail::tls_setup, "could not start HTTP/2 with the origin", origin.host_port());
    out.emplace(session, session->open_stream());
    co_return std::nullopt;
}

void pool_idle(std::optional<OriginStream> idle, std::string key, std::shared_ptr<ParentLease> lease, bool stopping) {
    if (!idle || idle->is_h2()) return;  // a stream: let go (its connection stays for the others)
    std::optional<TlsStream> tls(std::move(idle->tls()));
    idle.reset();
    pool_idle(std::move(tls), std::move(key), std::move(lease), stopping);
}

}  // namespace vigil::upstream

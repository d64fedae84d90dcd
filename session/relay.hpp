// The HTTP relay: one client connection's transactions to origins, each through the request
// phase, the exchange with the origin and the response phase, with the origin connection kept
// alive between them. Generic over the stream types; defined in relay_impl.hpp (the
// transaction, the request phase), exchange_impl.hpp (the origin's side), answer_impl.hpp
// (Vigil's own answers), respond_impl.hpp (the response phase) and cached_impl.hpp (answers
// from the cache), instantiated in relay.cpp for plain TCP and TLS (and by the unit tests for
// Beast's test stream).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>

#include "cache/relay_hooks.hpp"
#include "session/services.hpp"
#include "session/tx_audit.hpp"
#include "upstream/h2_origin.hpp"
#include "upstream/origin.hpp"
#include "wire/head_read.hpp"

namespace vigil::session {

using cache::ask_revalidation;
using cache::cache_lookup;
using cache::CacheUse;
using cache::entry_to_store;
using cache::epoch_seconds;
using cache::invalidate_cached;
using cache::load_cached_body;
using cache::stored_fields;

// What the response phase decided.
enum class ResponseStep { deliver, upgrade, revalidated, refuse };

template <class Client, class Upstream>
class HttpRelay {
public:
    using Origin = upstream::OriginConnection<Upstream>;

    HttpRelay(RelayServices sv, Client& client, beast::flat_buffer& client_buf, uint64_t conn_id,
              std::string client_ip, typename Origin::Connect connect);

    // Connection-level audit fields (client, TLS mode, SNI, TLS parameters) for every record.
    audit::Record& audit_base() { return base_; }
    // The origin connection (the bump adopts one made before the first request; the session
    // hands it to the pool when it parks or ends).
    Origin& origin() { return origin_; }
    // The connection's bandwidth limits (may be rebound between requests as the user changes).
    void set_throttle(Throttle* t) { throttle_ = t; }
    // A Set-Cookie value the next response to the client carries (a grant, session/policy.hpp).
    void set_cookie_on_next_response(std::string cookie) { pending_cookie_ = std::move(cookie); }

    // Relays one request and its response. Returns whether the client connection may carry
    // another request (keep-alive, nothing went wrong, not shutting down).
    net::awaitable<bool> transaction(RequestParser& parser, const Authority& origin, const std::string& raw_target,
                                     bool https);

private:
    struct Exchange;  // one transaction's state, passed from phase to phase

    // The request phase: audit health, continue links, request rules, framing; false when the
    // transaction stops (answer() then says why).
    bool admit(Exchange& x);
    bool enforce(Exchange& x);
    net::awaitable<bool> answer(Exchange& x);
    void build_origin_request(Exchange& x);
    // The origin's response head for the request (connecting, reusing or retrying once, and
    // sending the body on the way); false when the client was answered instead.
    net::awaitable<bool> exchange_with_origin(Exchange& x);
    net::awaitable<bool> upload_failed(Exchange& x, RelayError sent, inspect::BodyScanner* scanner);
    // The response phase: checks, rules, cache, the client's head; then deliver() sends the body.
    ResponseStep respond(Exchange& x, http::response<http::buffer_body>& res, std::unique_ptr<Compressor>& compressor);
    bool client_head(Exchange& x, http::response<http::buffer_body>& res);
    net::awaitable<bool> deliver(Exchange& x, http::response<http::buffer_body>& res,
                                 std::unique_ptr<Compressor> compressor);
    void store_when_complete(Exchange& x, std::optional<cache::Entry>& to_store, BodyCapture& capture);
    net::awaitable<void> transfer_failed(RelayError relayed, const error_code& cut, TxAudit& tx,
                                         const std::string& url, unsigned version);
    // Answers from a stored response (HIT or REVALIDATED).
    net::awaitable<bool> serve_cached(Exchange& x, std::shared_ptr<const cache::Entry> e, const char* how);
    std::shared_ptr<const cache::Entry> retag_cached(std::shared_ptr<const cache::Entry> e, bool clean,
                                                     int64_t ruleset);
    net::awaitable<bool> write_cached_body(Exchange& x, http::response<http::buffer_body>& res,
                                           const std::string& body, std::unique_ptr<Compressor> compressor);
    net::awaitable<bool> continue_redirect(Exchange& x);
    // The pending Set-Cookie, if any, into a response Vigil sends or relays.
    template <class Response>
    void add_pending_cookie(Response& res) {
        if (pending_cookie_.empty()) return;
        res.insert(http::field::set_cookie, pending_cookie_);
        pending_cookie_.clear();
    }
    net::awaitable<bool> switch_protocols(Exchange& x);
    template <class Request, class Response>
    std::unique_ptr<Compressor> compress_for(const Request& req, const Response& res, bool https,
                                             boost::optional<uint64_t> length);

    // Answers with a page and ends the connection (false, for `co_return co_await refuse(...)`).
    net::awaitable<bool> refuse(const PageInfo& page, unsigned version);
    net::awaitable<bool> refuse(const Failure& failure, unsigned version) {
        const PageInfo page = page_for(failure, cid_);
        co_return co_await refuse(page, version);
    }
    net::awaitable<bool> block(const inspect::Verdict& v, const std::string& url, unsigned version);

    RelayServices sv_;
    Client& client_;
    beast::flat_buffer& cbuf_;
    uint64_t cid_;
    std::string client_ip_;
    audit::Record base_;
    TxAudit* tx_ = nullptr;  // the transaction in progress, for refuse()
    Origin origin_;
    Throttle* throttle_ = nullptr;
    std::string pending_cookie_;
};

extern template class HttpRelay<beast::tcp_stream, beast::tcp_stream>;
extern template class HttpRelay<TlsStream, upstream::OriginStream>;

}  // namespace vigil::session

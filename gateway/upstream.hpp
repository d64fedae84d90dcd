// Internal: the upstream connector — name resolution (hosts file, then DNS), the destination
// guards (private addresses, loops), TCP connect, and the verified TLS handshake to origins.
#pragma once

#include <optional>

#include <boost/beast/ssl/ssl_stream.hpp>

#include "gateway/framing.hpp"
#include "gateway/pages.hpp"
#include "gateway/state.hpp"

namespace vigil::gateway {

using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// Connects `out` (fresh) to the origin, or returns the page that says why not.
net::awaitable<std::optional<PageInfo>> connect_tcp(Gateway& gw, const Authority& origin,
                                                   std::optional<beast::tcp_stream>& out, uint64_t cid);

// Connects and completes a TLS handshake whose certificate chain and name were verified —
// or whose problems tls.origin_exceptions or this client's "continue" past a certificate
// warning accept; then `accepted` (when given) says what was wrong and who accepted it, for
// the audit record, e.g. "self_signed (accepted by tls.origin_exceptions)".
net::awaitable<std::optional<PageInfo>> connect_tls(Gateway& gw, const Authority& origin,
                                                   std::optional<TlsStream>& out, uint64_t cid,
                                                   const std::string& client = "", std::string* accepted = nullptr);

// The key under which a client's "continue" past a certificate warning for `host` is kept.
inline std::string cert_warning_key(const std::string& host) { return "origin-certificate:" + host; }

// Whether a failed origin connection is a certificate problem that policy turns into a warning.
bool warnable_certificate_problem(const Gateway& gw, const PageInfo& failure);

}  // namespace vigil::gateway

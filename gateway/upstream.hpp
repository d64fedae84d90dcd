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

// Connects and completes a TLS handshake whose certificate chain and name were verified.
net::awaitable<std::optional<PageInfo>> connect_tls(Gateway& gw, const Authority& origin,
                                                   std::optional<TlsStream>& out, uint64_t cid);

}  // namespace vigil::gateway

// A bumped tunnel: the client's TLS connection, established, and what the CONNECT decided.
// Made by the CONNECT phase (connect.cpp), served by the bumped request loop (bumped.cpp).
#pragma once

#include <memory>
#include <string>

#include "session/services.hpp"

namespace vigil::session {

struct BumpedTunnel {
    TlsStream client;
    Authority origin;
    inspect::Verdict verdict;  // the host-only decision (a block is shown inside TLS)
    std::string site_url;
    std::shared_ptr<TlsMaterial> material;  // kept for this connection's life
};

// The bumped request loop: connects to the origin (or shows why not, inside TLS), then relays
// each request of the tunnel as its own transaction.
net::awaitable<void> bumped_requests(BumpedTunnel& tunnel, beast::flat_buffer& buf, Services& sv,
                                     SessionTrack& track, audit::Record& base);

// The same for a client that chose HTTP/2 in the handshake (h2_connection.cpp): each stream is
// one transaction.
net::awaitable<void> h2_requests(BumpedTunnel& tunnel, beast::flat_buffer& buf, Services& sv, SessionTrack& track,
                                 audit::Record& base);
bool negotiated_h2(SSL* ssl);

// "TLSv1.3 TLS_AES_128_GCM_SHA256", for the audit record.
std::string tls_params(SSL* ssl);

}  // namespace vigil::session

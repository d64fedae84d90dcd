// The upstream connector: name resolution (hosts file, then DNS), the destination guards
// (private addresses, loops), parent proxies, TCP connect, and the verified TLS handshake to
// origins with AIA completion and OCSP. Every way of failing ends in a page with a reason.
#pragma once

#include <chrono>
#include <optional>


#include <boost/asio/ssl/context.hpp>

#include "io/tls_stream.hpp"
#include "tls/cert_cache.hpp"
#include "tls/revocation.hpp"
#include "upstream/fetcher.hpp"
#include "upstream/parents.hpp"
#include "wire/context.hpp"
#include "wire/failure.hpp"
#include "wire/framing.hpp"
#include "wire/pages.hpp"

namespace vigil::upstream {

using namespace vigil::core;
using namespace vigil::io;
using wire::Fail;
using wire::Failure;
using wire::PageInfo;
using io::TlsStream;

// Everything connecting to origins uses, built once by the gateway's wiring; shared by the
// workers (the caches are internally synchronised). Member order matters: the fetcher is last,
// so it goes first (a fetch in flight uses the parents, counters and hosts).
struct Connector {
    Connector(const Config& c, Counters& k) : cfg(c), counters(k) {}
    Connector(const Connector&) = delete;
    Connector& operator=(const Connector&) = delete;

    const Config& cfg;
    Counters& counters;
    HostsFile hosts;
    std::vector<tcp::endpoint> listen_endpoints;  // refused as destinations (loops)
    // Intermediates fetched over AIA, offered to every origin handshake (before origin_ctx,
    // which refers to it).
    tls::IntermediatePool intermediates;
    std::unique_ptr<net::ssl::context> origin_ctx;  // we are the client to origins
    // Failed fetches (not retried for 5 minutes) and OCSP answers.
    tls::ExpiringCache<std::string> fetch_failures{4096};
    tls::ExpiringCache<tls::OcspAnswer> ocsp_answers{20000};
    Parents parents;                   // upstream.parents (empty: everything goes direct)
    std::unique_ptr<Fetcher> fetcher;  // null when neither AIA fetching nor OCSP is on
};

// How a connection to an origin was made. With parent proxies (upstream.parents), a plain
// HTTP relay (http = true) connects to the parent itself and sends its requests in
// absolute-form (via_parent); every other use gets a CONNECT tunnel through the parent.
struct Route {
    bool http = false;                   // in: the caller speaks plain HTTP over the connection
    bool http1_only = false;             // in: the request needs HTTP/1.1 (an Upgrade): no h2 offered
    bool offer_h2 = false;               // in (connect_tls): offer h2 besides http/1.1 in ALPN
    std::shared_ptr<ParentLease> lease;  // out: set when connected through a parent; held beside the connection
    // Connected to a parent proxy itself, which expects requests in absolute-form.
    bool via_parent() const { return http && lease; }
};

// Connects `out` (fresh) to the origin — directly, or through the first parent proxy that
// answers (failing over to the next, marking the failed one down) — or says why not.
net::awaitable<std::optional<Failure>> connect_tcp(Connector& up, const Authority& origin,
                                                   std::optional<beast::tcp_stream>& out, uint64_t cid,
                                                   Route* route = nullptr);

// Active health check: connects to the parent once and marks it up or down.
net::awaitable<void> check_parent(Connector& up, ParentProxy& p);

// Connects and completes a TLS handshake whose certificate chain and name were verified —
// or whose problems tls.origin_exceptions or this client's "continue" past a certificate
// warning accept; then `accepted` (when given) says what was wrong and who accepted it, for
// the audit record, e.g. "self_signed (accepted by tls.origin_exceptions)".
// `continued`: this client chose to continue past a certificate warning for this host
// (tls.origin_errors = warn), so those problems are accepted too.
net::awaitable<std::optional<Failure>> connect_tls(Connector& up, const Authority& origin,
                                                   std::optional<TlsStream>& out, uint64_t cid,
                                                   bool continued = false, std::string* accepted = nullptr,
                                                   Route* route = nullptr);

// The key under which a client's "continue" past a certificate warning for `host` is kept.
inline std::string cert_warning_key(const std::string& host) { return "origin-certificate:" + host; }

// Whether a failed origin connection is a certificate problem that policy turns into a warning.
bool warnable_certificate_problem(const Config& cfg, const Failure& failure);

}  // namespace vigil::upstream

// SSL_CTX set-up for both legs of a bumped connection, and plain-words origin verification verdicts.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tls/openssl_ptr.hpp"
#include "tls/webpki.hpp"

namespace vigil::tls {

// Client-facing (we are the server): TLS 1.2+, ALPN http/1.1 only, session tickets, and an
// SNI guard that refuses a ClientHello whose SNI differs from the CONNECT host (see expect_sni).
// The context bumped clients handshake with; `alpn`: the protocols offered ("h2", "http/1.1"),
// in order of preference.
SslCtxPtr make_client_facing_ctx(const std::vector<std::string>& alpn = {"http/1.1"});

// Tells the SNI guard which host this connection was CONNECTed to.
void expect_sni(SSL* ssl, const std::string& host);
// True when the guard refused this connection's SNI.
bool sni_was_refused(SSL* ssl);

// Origin-facing (we are the client): TLS 1.2+, peer verification against the system trust
// store plus `extra_ca_file` (may be empty), strict X.509 checks, no CN fallback for names.
// Throws TlsError when the extra CA file cannot be loaded.
// tls.revocation: off; check the OCSP response the origin staples (the default); or also ask
// the responder when there is no staple (the gateway does that after the handshake).
enum class Revocation { off, staple, ocsp };
// Whom origins are checked against, and how (the [tls] keys of the same names).
struct OriginTrust {
    std::string extra_ca_file;           // tls.extra_ca_file; may be empty
    bool system_store = true;            // tls.system_store: the system's anchors too
    Revocation revocation = Revocation::staple;
    int max_chain_depth = 8;             // tls.max_chain_depth: certificates between leaf and anchor
    Strictness strictness = Strictness::browser;  // tls.strictness (webpki.hpp)
};
// A certificate in `extra_ca_file` is an anchor wherever it sits in a chain: a trusted
// intermediate ends the path there (partial chains, as browsers do). Throws TlsError when
// the file cannot be loaded, or when there is no anchor at all.
SslCtxPtr make_origin_ctx(const OriginTrust& trust);
inline constexpr long kMaxOriginCertList = 64 * 1024;  // bytes of the origin's Certificate message
// make_origin_ctx loads the public suffix list from its default path unless one is set.
class PublicSuffixList;
void set_public_suffix_list(std::shared_ptr<const PublicSuffixList> list);

// Sets SNI (DNS names only) and the name the origin certificate must carry; `offer_h2`: ALPN
// offers h2 before http/1.1 (upstream/h2_origin.hpp). False on failure.
bool prepare_origin_ssl(SSL* ssl, const std::string& host, bool offer_h2 = false);

// A stable code and plain words for an X509_V_ERR_* value, for block pages, logs and counters.
struct CertVerdict {
    std::string code;    // e.g. "expired", "hostname_mismatch", "self_signed", "untrusted"
    std::string reason;  // e.g. "the certificate has expired"
};
CertVerdict describe_verify_error(long x509_error);
// The verdict on an origin handshake that failed verification: our own checks' problem
// (tls/webpki.hpp) when they rejected the chain, else OpenSSL's error in plain words.
CertVerdict origin_verdict(SSL* ssl);
// Whether a failed origin handshake failed on the certificate (chain, our checks, or a
// stapled "revoked"), rather than on the network or the TLS protocol.
bool origin_certificate_rejected(SSL* ssl);

// Origin certificate problems to accept on one connection instead of refusing it: the error
// classes (codes of CertVerdict) an exception or the user's "continue" allows, and/or a pinned
// SHA-256 fingerprint ("AB:CD:...") that, when the leaf matches it, accepts whatever is wrong.
struct OriginAcceptance {
    std::vector<std::string> classes;
    std::string pin_sha256;
};
// Before the handshake. The acceptance lives with the SSL.
void set_origin_acceptance(SSL* ssl, OriginAcceptance acceptance);
// After the handshake, for a problem found later (the OCSP responder's "revoked"): whether
// this connection's acceptance covers class `cls` (or its pin matches the leaf); if so it is
// noted among accepted_problems.
bool accept_origin_problem(SSL* ssl, const std::string& cls);
// Whether a stapled OCSP response gave an answer (good or revoked) during the handshake.
bool stapled_ocsp_answered(SSL* ssl);
// The origin's leaf certificate, also after a handshake that its verification ended (null when
// none arrived); owned by the SSL.
X509* origin_leaf(SSL* ssl);
// After a successful handshake: the classes that were wrong and accepted ("pinned" when the
// pin decided), empty when the chain verified cleanly.
std::vector<std::string> accepted_problems(SSL* ssl);

// Origin TLS sessions, for resuming instead of a full handshake on the next connection to
// the same origin (the origin then skips its private-key operation). Only sessions whose
// chain verified cleanly are kept — never one that an exception, a pin or a user's "continue"
// let through — one per origin, at most kMaxOriginSessions, none older than an hour.
inline constexpr size_t kMaxOriginSessions = 4096;
// Before the handshake: offers the cached session for `key` ("host:port"), and files the
// session the origin gives this connection under `key`.
void resume_origin_session(SSL* ssl, const std::string& key);

}  // namespace vigil::tls

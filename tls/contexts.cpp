// SSL_CTX builders for the client and origin legs; the SNI guard; the origin verify callback.
#include "tls/contexts.hpp"

#include <openssl/ocsp.h>
#include <strings.h>

#include <algorithm>
#include <ctime>
#include <deque>
#include <mutex>
#include <unordered_map>

#include "tls/ca.hpp"
#include "tls/mint.hpp"
#include "tls/revocation.hpp"
#include "tls/webpki.hpp"

namespace vigil::tls {
namespace {

int sni_index() {
    static const int idx = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return idx;
}

struct SniState {
    std::string expected;
    bool refused = false;
};

void free_sni_state(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) { delete static_cast<SniState*>(ptr); }

int sni_state_index() {
    static const int idx = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, free_sni_state);
    return idx;
}

bool names_equal(std::string a, const std::string& b) {
    if (!a.empty() && a.back() == '.') a.pop_back();
    return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

int on_servername(SSL* ssl, int* alert, void*) {
    auto* st = static_cast<SniState*>(SSL_get_ex_data(ssl, sni_state_index()));
    const char* sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!st || !sni) return SSL_TLSEXT_ERR_OK;  // no SNI: the certificate is for the CONNECT host
    if (names_equal(sni, st->expected)) return SSL_TLSEXT_ERR_OK;
    st->refused = true;
    *alert = SSL_AD_UNRECOGNIZED_NAME;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

// The client's ALPN list against Vigil's (tls.client_alpn, wire format, in Vigil's order of
// preference): the first of Vigil's that the client offers; none in common means no ALPN,
// which clients take as HTTP/1.1.
int on_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned inlen, void* arg) {
    const auto* offered = static_cast<const std::string*>(arg);
    unsigned char* sel = nullptr;
    if (SSL_select_next_proto(&sel, outlen, reinterpret_cast<const unsigned char*>(offered->data()),
                              unsigned(offered->size()), in, inlen) == OPENSSL_NPN_NEGOTIATED) {
        *out = sel;
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

// The wire form of an ALPN list, kept for the process's life (contexts are made at start-up).
const std::string* alpn_wire(const std::vector<std::string>& protocols) {
    static std::mutex mu;
    static std::deque<std::string> kept;
    std::string w;
    for (const auto& p : protocols) w.append(1, char(p.size())).append(p);
    std::lock_guard lock(mu);
    for (const auto& k : kept)
        if (k == w) return &k;
    return &kept.emplace_back(std::move(w));
}

}  // namespace

SslCtxPtr make_client_facing_ctx(const std::vector<std::string>& alpn) {
    SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
    if (!ctx) throw TlsError("SSL_CTX_new: " + last_openssl_error());
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
    SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                       SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_tlsext_servername_callback(ctx.get(), on_servername);
    SSL_CTX_set_alpn_select_cb(ctx.get(), on_alpn, const_cast<std::string*>(alpn_wire(alpn)));
    SSL_CTX_set_session_id_context(ctx.get(), reinterpret_cast<const unsigned char*>("vigil"), 5);
    // Resumption uses stateless tickets; the server-side cache stays small (memory is per host).
    SSL_CTX_sess_set_cache_size(ctx.get(), 2048);
    (void)sni_index();
    return ctx;
}

void expect_sni(SSL* ssl, const std::string& host) {
    auto* st = new SniState{host, false};
    if (SSL_set_ex_data(ssl, sni_state_index(), st) != 1) delete st;
}

bool sni_was_refused(SSL* ssl) {
    auto* st = static_cast<SniState*>(SSL_get_ex_data(ssl, sni_state_index()));
    return st && st->refused;
}

namespace {

std::shared_ptr<const PublicSuffixList>& public_suffixes() {
    static std::shared_ptr<const PublicSuffixList> list;
    return list;
}

void free_problem(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) { delete static_cast<ChainProblem*>(ptr); }

int problem_index() {
    static const int idx = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, free_problem);
    return idx;
}

struct Acceptance {
    OriginAcceptance allowed;
    std::vector<std::string> accepted;  // what was wrong and let through
    void note(const std::string& what) {
        if (std::find(accepted.begin(), accepted.end(), what) == accepted.end()) accepted.push_back(what);
    }
    bool allows(const std::string& cls) const {
        return std::find(allowed.classes.begin(), allowed.classes.end(), cls) != allowed.classes.end();
    }
};

void free_acceptance(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) { delete static_cast<Acceptance*>(ptr); }

int acceptance_index() {
    static const int idx = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, free_acceptance);
    return idx;
}

void free_leaf(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) { X509_free(static_cast<X509*>(ptr)); }

// The origin's leaf as the verifier saw it: kept even when the handshake then fails, for the page.
int leaf_index() {
    static const int idx = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, free_leaf);
    return idx;
}

// A problem with the origin's certificate: accepted (and noted) when this connection's
// acceptance covers its class; otherwise kept on the SSL for origin_verdict. Returns the
// verify/status callback's answer: 1 to go on, 0 to end the handshake.
int accept_or_refuse(SSL* ssl, Acceptance* acc, ChainProblem problem) {
    if (acc && acc->allows(problem.code)) {
        acc->note(problem.code);
        return 1;
    }
    delete static_cast<ChainProblem*>(SSL_get_ex_data(ssl, problem_index()));
    SSL_set_ex_data(ssl, problem_index(), new ChainProblem(std::move(problem)));
    return 0;
}

// Set on a connection whose chain verified along another path than the one OpenSSL built first.
int alternate_index() {
    static const int idx = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return idx;
}

// tls.strictness of an origin context (null: browser).
int strictness_index() {
    static const int idx = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return idx;
}

// Called by OpenSSL for each certificate of the chain and for each error it finds. A failure
// (ok = 0) ends the handshake unless this connection's acceptance covers it. After OpenSSL
// accepted the whole chain (the call for the leaf at depth 0), our own checks run on the chain
// it built; a problem they find ends the handshake like any verify error, with the same rule.
int on_verify(int ok, X509_STORE_CTX* store) {
    auto* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
    if (!ssl) return 0;
    if (!SSL_get_ex_data(ssl, leaf_index())) {
        if (X509* leaf = X509_STORE_CTX_get0_cert(store); leaf && X509_up_ref(leaf) == 1)
            SSL_set_ex_data(ssl, leaf_index(), leaf);
    }
    auto* acc = static_cast<Acceptance*>(SSL_get_ex_data(ssl, acceptance_index()));
    if (acc && !acc->allowed.pin_sha256.empty()) {
        // A pinned certificate is accepted as it is: the leaf must be exactly that one.
        X509* leaf = X509_STORE_CTX_get0_cert(store);
        if (leaf && fingerprint(leaf, EVP_sha256()) == acc->allowed.pin_sha256) {
            if (!ok) acc->note("pinned");
            return 1;
        }
    }
    if (SSL_get_ex_data(ssl, alternate_index())) {
        X509_STORE_CTX_set_error(store, X509_V_OK);  // the first path's remaining complaints
        return 1;
    }
    const bool strict = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), strictness_index()) != nullptr;
    if (!ok && path_error(X509_STORE_CTX_get_error(store)) &&
        (X509_STORE_CTX_get_error_depth(store) > 0 || X509_STORE_CTX_get_error(store) == X509_V_ERR_PERMITTED_VIOLATION ||
         X509_STORE_CTX_get_error(store) == X509_V_ERR_EXCLUDED_VIOLATION) &&
        public_suffixes() &&
        verifies_along_another_path(store, *public_suffixes(), strict ? Strictness::strict : Strictness::browser)) {
        SSL_set_ex_data(ssl, alternate_index(), reinterpret_cast<void*>(1));
        X509_STORE_CTX_set_error(store, X509_V_OK);
        return 1;
    }
    if (!ok) {
        const int err = X509_STORE_CTX_get_error(store);
        if (err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY || err == X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE)
            note_missing_issuer(ssl, X509_STORE_CTX_get_current_cert(store));  // for fetching over AIA
        const std::string cls = describe_verify_error(err).code;
        if (acc && acc->allows(cls)) {
            acc->note(cls);
            return 1;
        }
        return 0;
    }
    if (X509_STORE_CTX_get_error_depth(store) != 0) return 1;
    const auto& psl = public_suffixes();
    if (!psl) return 0;
    auto found = check_webpki(X509_STORE_CTX_get0_chain(store), *psl, strict ? Strictness::strict : Strictness::browser);
    if (!found || accept_or_refuse(ssl, acc, std::move(*found))) return 1;
    X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
}

int staple_answered_index() {
    static const int idx = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return idx;
}

// A stapled OCSP response (tls.revocation = staple): "revoked" ends the handshake. No staple,
// a response that is not "successful", or one for another certificate is not an answer; a
// staple whose signature does not verify is refused as malformed.
int on_ocsp_staple(SSL* ssl, void*) {
    const unsigned char* der = nullptr;
    const long len = SSL_get_tlsext_status_ocsp_resp(ssl, &der);
    if (len <= 0 || !der) return 1;
    auto refuse = [ssl](std::string code, std::string reason) {
        return accept_or_refuse(ssl, static_cast<Acceptance*>(SSL_get_ex_data(ssl, acceptance_index())),
                                ChainProblem{std::move(code), std::move(reason)});
    };
    STACK_OF(X509)* chain = SSL_get0_verified_chain(ssl);
    if (!chain || sk_X509_num(chain) < 2) return 1;
    const auto answer = check_ocsp_response(std::string_view(reinterpret_cast<const char*>(der), static_cast<size_t>(len)),
                                            chain, SSL_CTX_get_cert_store(SSL_get_SSL_CTX(ssl)),
                                            sk_X509_value(chain, 0), sk_X509_value(chain, 1));
    if (answer.status == OcspAnswer::invalid)
        return refuse("malformed", "the origin stapled an OCSP response that cannot be trusted: " + answer.detail);
    if (answer.status == OcspAnswer::good || answer.status == OcspAnswer::revoked)
        SSL_set_ex_data(ssl, staple_answered_index(), ssl);  // any non-null marker: the responder need not be asked
    if (answer.status == OcspAnswer::revoked)
        return refuse("revoked", "the origin's certificate has been revoked (its stapled OCSP response says so)");
    return 1;  // good, or no answer (another certificate, stale, "try later"): not a verdict
}

using SessionPtr = std::unique_ptr<SSL_SESSION, FnDeleter<SSL_SESSION_free>>;

// One session per origin. Sessions are immutable once made and reference-counted, so one may
// be offered to several connections at once.
class OriginSessions {
public:
    SessionPtr get(const std::string& key) {
        std::lock_guard lock(mu_);
        auto it = map_.find(key);
        if (it == map_.end()) return nullptr;
        SSL_SESSION* s = it->second.get();
        if (std::time(nullptr) - SSL_SESSION_get_time(s) > 3600 || !SSL_SESSION_is_resumable(s)) {
            map_.erase(it);
            return nullptr;
        }
        SSL_SESSION_up_ref(s);
        return SessionPtr(s);
    }
    void put(const std::string& key, SSL_SESSION* s) {  // takes the reference
        SessionPtr owned(s);
        std::lock_guard lock(mu_);
        if (map_.size() >= kMaxOriginSessions && !map_.count(key)) map_.erase(map_.begin());  // any one
        map_[key] = std::move(owned);
    }

private:
    std::mutex mu_;
    std::unordered_map<std::string, SessionPtr> map_;
};

OriginSessions& origin_sessions() {
    static OriginSessions sessions;
    return sessions;
}

void free_key(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) { delete static_cast<std::string*>(ptr); }

int session_key_index() {
    static const int idx = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, free_key);
    return idx;
}

// OpenSSL's new-session callback on the origin leg (TLS 1.2 at the handshake's end, TLS 1.3
// with each ticket). Keeps a copy; returns 0 so the original stays with OpenSSL.
int on_new_origin_session(SSL* ssl, SSL_SESSION* session) {
    const auto* key = static_cast<const std::string*>(SSL_get_ex_data(ssl, session_key_index()));
    const auto* acc = static_cast<const Acceptance*>(SSL_get_ex_data(ssl, acceptance_index()));
    if (!key || (acc && !acc->accepted.empty()) || SSL_get_ex_data(ssl, problem_index()) ||
        SSL_get_verify_result(ssl) != X509_V_OK)
        return 0;  // only a chain that verified cleanly may be resumed
    // A copy: OpenSSL marks the connection's own session unresumable when the connection is
    // freed without a close_notify, which is how a relay ends most origin connections.
    if (SSL_SESSION* copy = SSL_SESSION_dup(session)) origin_sessions().put(*key, copy);
    return 0;  // the original stays OpenSSL's
}

}  // namespace

void resume_origin_session(SSL* ssl, const std::string& key) {
    SSL_set_ex_data(ssl, session_key_index(), new std::string(key));
    if (auto session = origin_sessions().get(key)) SSL_set_session(ssl, session.get());  // takes its own reference
}

void set_public_suffix_list(std::shared_ptr<const PublicSuffixList> list) { public_suffixes() = std::move(list); }

void set_origin_acceptance(SSL* ssl, OriginAcceptance acceptance) {
    if (acceptance.classes.empty() && acceptance.pin_sha256.empty()) return;
    delete static_cast<Acceptance*>(SSL_get_ex_data(ssl, acceptance_index()));
    SSL_set_ex_data(ssl, acceptance_index(), new Acceptance{std::move(acceptance), {}});
}

bool stapled_ocsp_answered(SSL* ssl) { return SSL_get_ex_data(ssl, staple_answered_index()) != nullptr; }

X509* origin_leaf(SSL* ssl) {
    if (auto* kept = static_cast<X509*>(SSL_get_ex_data(ssl, leaf_index()))) return kept;
    return SSL_get0_peer_certificate(ssl);
}

bool accept_origin_problem(SSL* ssl, const std::string& cls) {
    auto* acc = static_cast<Acceptance*>(SSL_get_ex_data(ssl, acceptance_index()));
    if (!acc) return false;
    X509* leaf = SSL_get0_peer_certificate(ssl);
    if (!acc->allows(cls) && !(leaf && !acc->allowed.pin_sha256.empty() &&
                               fingerprint(leaf, EVP_sha256()) == acc->allowed.pin_sha256))
        return false;
    acc->note(cls);
    return true;
}

std::vector<std::string> accepted_problems(SSL* ssl) {
    const auto* acc = static_cast<const Acceptance*>(SSL_get_ex_data(ssl, acceptance_index()));
    return acc ? acc->accepted : std::vector<std::string>{};
}

CertVerdict origin_verdict(SSL* ssl) {
    if (const auto* p = static_cast<const ChainProblem*>(SSL_get_ex_data(ssl, problem_index()))) return {p->code, p->reason};
    return describe_verify_error(SSL_get_verify_result(ssl));
}

bool origin_certificate_rejected(SSL* ssl) {
    return SSL_get_verify_result(ssl) != X509_V_OK || SSL_get_ex_data(ssl, problem_index()) != nullptr;
}

SslCtxPtr make_origin_ctx(const OriginTrust& trust) {
    const std::string& extra_ca_file = trust.extra_ca_file;
    const Revocation revocation = trust.revocation;
    if (!public_suffixes()) public_suffixes() = PublicSuffixList::load(PublicSuffixList::kDefaultPath);
    SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
    if (!ctx) throw TlsError("SSL_CTX_new: " + last_openssl_error());
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
    SSL_CTX_set_security_level(ctx.get(), 2);
    // The origin's whole certificate message: real chains are 3-20 KiB; a chain of hundreds of
    // certificates or a certificate with a huge extension ends the handshake, not memory.
    SSL_CTX_set_max_cert_list(ctx.get(), kMaxOriginCertList);
    SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, on_verify);
    if (revocation != Revocation::off) SSL_CTX_set_tlsext_status_cb(ctx.get(), on_ocsp_staple);
    // No real chain is deeper; a longer one is refused before our checks see it.
    SSL_CTX_set_verify_depth(ctx.get(), trust.max_chain_depth);
    if (trust.system_store && SSL_CTX_set_default_verify_paths(ctx.get()) != 1)
        throw TlsError("cannot load the system trust store");
    if (!extra_ca_file.empty() && SSL_CTX_load_verify_locations(ctx.get(), extra_ca_file.c_str(), nullptr) != 1)
        throw TlsError(extra_ca_file + ": cannot load extra CA file (" + last_openssl_error() + ")");
    if (!trust.system_store && extra_ca_file.empty())
        throw TlsError("tls.system_store = false and no tls.extra_ca_file: no origin could be trusted");
    SSL_CTX_set_ex_data(ctx.get(), strictness_index(),
                        reinterpret_cast<void*>(static_cast<intptr_t>(trust.strictness == Strictness::strict)));
    X509_VERIFY_PARAM* param = SSL_CTX_get0_param(ctx.get());
    // PARTIAL_CHAIN: a trusted intermediate is an anchor (browsers stop at the first trusted
    // certificate too); TRUSTED_FIRST: the trusted copy of a cross-signed CA wins.
    X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT | X509_V_FLAG_TRUSTED_FIRST | X509_V_FLAG_PARTIAL_CHAIN);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT | X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    static const unsigned char alpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    SSL_CTX_set_alpn_protos(ctx.get(), alpn, sizeof alpn);
    // Sessions are kept by resume_origin_session's cache, not OpenSSL's (which a client
    // context does not consult); each holds the origin's certificate chain, hence the bound.
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx.get(), on_new_origin_session);
    return ctx;
}

bool prepare_origin_ssl(SSL* ssl, const std::string& host, bool offer_h2) {
    if (offer_h2) {  // the context offers http/1.1 alone
        static const unsigned char both[] = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
        if (SSL_set_alpn_protos(ssl, both, sizeof both) != 0) return false;
    }
    // Ask for a stapled OCSP response when the context checks them.
    int (*staple_cb)(SSL*, void*) = nullptr;
    SSL_CTX_get_tlsext_status_cb(SSL_get_SSL_CTX(ssl), &staple_cb);
    if (staple_cb) SSL_set_tlsext_status_type(ssl, TLSEXT_STATUSTYPE_ocsp);
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    if (!canonical_ip(host).empty()) return X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) == 1;
    return SSL_set_tlsext_host_name(ssl, host.c_str()) == 1 && SSL_set1_host(ssl, host.c_str()) == 1;
}

}  // namespace vigil::tls

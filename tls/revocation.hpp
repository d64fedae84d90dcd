// What completing and checking an origin's chain needs beyond the handshake: AIA URLs, the
// pool of intermediates fetched over AIA caIssuers, and OCSP requests and responses. Pure
// OpenSSL; the fetching itself (HTTP, off the workers) is the gateway's.
#pragma once

#include <chrono>
#include <ctime>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tls/openssl_ptr.hpp"

namespace vigil::tls {

// The first http:// URL of the certificate's Authority Information Access for the method
// (NID_ad_ca_issuers or NID_ad_OCSP); "" when there is none. Other schemes are ignored.
std::string aia_url(X509* cert, int method_nid);

// Certificates from an AIA caIssuers response: DER, PEM, or PKCS#7 "certs-only" (.p7c).
// Empty when the body holds none.
std::vector<X509Ptr> parse_issuer_certs(std::string_view body);

// Intermediates fetched over AIA, offered to chain building as untrusted certificates (they
// must still chain to a trusted root and pass every check). Bounded, oldest out first;
// shared by all workers.
class IntermediatePool {
public:
    explicit IntermediatePool(size_t max_certs = 1024) : max_(max_certs) {}
    void add(X509* cert);
    // The pooled certificates whose subject is `cert`'s issuer, and so on up to four levels.
    std::vector<X509Ptr> issuers_of(X509* cert) const;
    size_t size() const;

private:
    mutable std::mutex mu_;
    size_t max_;
    std::unordered_multimap<std::string, X509Ptr> by_subject_;  // DER of the subject name
    std::deque<std::string> order_;  // fingerprints, oldest first
    std::unordered_map<std::string, std::string> subject_of_;  // fingerprint -> subject DER
};

// Makes the origin context's chain building also use the pool (an SSL_CTX cert-verify
// callback around X509_verify_cert). The pool must outlive the context.
void use_intermediate_pool(SSL_CTX* ctx, const IntermediatePool* pool);

// After a handshake refused for a missing issuer: the caIssuers URL of the certificate whose
// issuer was missing; "" otherwise. note_missing_issuer is the verify callback's half.
std::string missing_issuer_url(SSL* ssl);
void note_missing_issuer(SSL* ssl, X509* cert);

// OCSP, for one leaf and its issuer.
struct OcspAnswer {
    enum Status { good, revoked, unknown, invalid } status = unknown;
    std::string detail;      // plain words for unknown/invalid
    std::time_t next_update = 0;  // 0 when the response gives none
};
// DER of an OCSP request for the leaf (SHA-1 certificate ID, as responders expect).
std::string ocsp_request(X509* leaf, X509* issuer);
// Reads and checks a response: signature against the chain and trust store, the certificate
// ID, and thisUpdate/nextUpdate (5 minutes' leeway). "invalid" when it cannot be trusted.
OcspAnswer check_ocsp_response(std::string_view der, STACK_OF(X509) * chain, X509_STORE* store, X509* leaf,
                               X509* issuer);
// A key for caching answers: the DER of the certificate ID.
std::string ocsp_cache_key(X509* leaf, X509* issuer);

// Answers (or failures) by key until they expire; bounded, oldest out first.
template <class V>
class ExpiringCache {
public:
    using Clock = std::chrono::system_clock;
    explicit ExpiringCache(size_t max_entries) : max_(max_entries) {}
    std::optional<V> get(const std::string& key) {
        std::lock_guard lock(mu_);
        auto it = map_.find(key);
        if (it == map_.end()) return std::nullopt;
        if (it->second.first <= Clock::now()) {
            map_.erase(it);
            return std::nullopt;
        }
        return it->second.second;
    }
    void put(const std::string& key, V value, Clock::time_point until) {
        std::lock_guard lock(mu_);
        if (map_.size() >= max_ && !map_.count(key)) {
            while (!order_.empty() && map_.size() >= max_) {
                map_.erase(order_.front());
                order_.pop_front();
            }
        }
        if (map_.insert_or_assign(key, std::make_pair(until, std::move(value))).second) order_.push_back(key);
        if (order_.size() > 2 * max_) {  // keys that expired and came back: keep one of each
            order_.clear();
            for (const auto& [k, v] : map_) order_.push_back(k);
        }
    }

private:
    std::mutex mu_;
    size_t max_;
    std::unordered_map<std::string, std::pair<Clock::time_point, V>> map_;
    std::deque<std::string> order_;
};

}  // namespace vigil::tls

// AIA URLs and the intermediate pool; OCSP requests and response checks.
#include "tls/revocation.hpp"

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>

#include "tls/ca.hpp"

namespace vigil::tls {
namespace {

using OcspCertIdPtr = std::unique_ptr<OCSP_CERTID, FnDeleter<OCSP_CERTID_free>>;
using OcspRequestPtr = std::unique_ptr<OCSP_REQUEST, FnDeleter<OCSP_REQUEST_free>>;
using OcspResponsePtr = std::unique_ptr<OCSP_RESPONSE, FnDeleter<OCSP_RESPONSE_free>>;
using OcspBasicPtr = std::unique_ptr<OCSP_BASICRESP, FnDeleter<OCSP_BASICRESP_free>>;
using AiaPtr = std::unique_ptr<AUTHORITY_INFO_ACCESS, FnDeleter<AUTHORITY_INFO_ACCESS_free>>;
using Pkcs7Ptr = std::unique_ptr<PKCS7, FnDeleter<PKCS7_free>>;

std::string der_of(const X509_NAME* name) {
    unsigned char* der = nullptr;
    const int len = i2d_X509_NAME(name, &der);
    if (len <= 0) return {};
    std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
    OPENSSL_free(der);
    return out;
}

void free_url(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) { delete static_cast<std::string*>(ptr); }

int missing_issuer_index() {
    static const int idx = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, free_url);
    return idx;
}

int pool_verify(X509_STORE_CTX* store, void* arg) {
    const auto* pool = static_cast<const IntermediatePool*>(arg);
    if (!pool || pool->size() == 0) return X509_verify_cert(store);
    // Offer the pooled issuers of every certificate the origin sent, beside what it sent.
    STACK_OF(X509)* sent = X509_STORE_CTX_get0_untrusted(store);
    std::vector<X509Ptr> extra = pool->issuers_of(X509_STORE_CTX_get0_cert(store));
    for (int i = 0; sent && i < sk_X509_num(sent); ++i)
        for (auto& c : pool->issuers_of(sk_X509_value(sent, i))) extra.push_back(std::move(c));
    if (extra.empty()) return X509_verify_cert(store);
    // A shallow stack: the certificates stay owned by `sent` and `extra`.
    STACK_OF(X509)* offered = sent ? sk_X509_dup(sent) : sk_X509_new_null();
    if (!offered) return X509_verify_cert(store);
    for (auto& c : extra) sk_X509_push(offered, c.get());
    X509_STORE_CTX_set0_untrusted(store, offered);
    const int rc = X509_verify_cert(store);  // the chain it builds holds its own references
    X509_STORE_CTX_set0_untrusted(store, sent);
    sk_X509_free(offered);
    return rc;
}

}  // namespace

std::string aia_url(X509* cert, int method_nid) {
    AiaPtr aia(static_cast<AUTHORITY_INFO_ACCESS*>(X509_get_ext_d2i(cert, NID_info_access, nullptr, nullptr)));
    for (int i = 0; aia && i < sk_ACCESS_DESCRIPTION_num(aia.get()); ++i) {
        const ACCESS_DESCRIPTION* ad = sk_ACCESS_DESCRIPTION_value(aia.get(), i);
        if (OBJ_obj2nid(ad->method) != method_nid || ad->location->type != GEN_URI) continue;
        const ASN1_IA5STRING* uri = ad->location->d.uniformResourceIdentifier;
        std::string url(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)), static_cast<size_t>(ASN1_STRING_length(uri)));
        if (url.rfind("http://", 0) == 0 && url.find('\0') == std::string::npos) return url;
    }
    return {};
}

std::vector<X509Ptr> parse_issuer_certs(std::string_view body) {
    std::vector<X509Ptr> out;
    if (body.empty() || body.size() > (1u << 20)) return out;
    const auto* p = reinterpret_cast<const unsigned char*>(body.data());
    const long len = static_cast<long>(body.size());
    const unsigned char* q = p;
    if (X509* der = d2i_X509(nullptr, &q, len)) {
        out.emplace_back(der);
        return out;
    }
    ERR_clear_error();
    q = p;
    Pkcs7Ptr p7(d2i_PKCS7(nullptr, &q, len));
    if (p7 && PKCS7_type_is_signed(p7.get()) && p7->d.sign && p7->d.sign->cert) {
        for (int i = 0; i < sk_X509_num(p7->d.sign->cert); ++i) out.push_back(x509_ref(sk_X509_value(p7->d.sign->cert, i)));
        ERR_clear_error();
        return out;
    }
    ERR_clear_error();
    BioPtr bio(BIO_new_mem_buf(body.data(), static_cast<int>(body.size())));
    while (bio) {
        X509* pem = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
        if (!pem) break;
        out.emplace_back(pem);
    }
    ERR_clear_error();
    return out;
}

void IntermediatePool::add(X509* cert) {
    const std::string fp = fingerprint(cert, EVP_sha256());
    std::lock_guard lock(mu_);
    if (subject_of_.count(fp)) return;
    while (order_.size() >= max_) {
        const std::string old = order_.front();
        order_.pop_front();
        const std::string subject = subject_of_[old];
        subject_of_.erase(old);
        auto [b, e] = by_subject_.equal_range(subject);
        for (auto it = b; it != e; ++it)
            if (fingerprint(it->second.get(), EVP_sha256()) == old) {
                by_subject_.erase(it);
                break;
            }
    }
    const std::string subject = der_of(X509_get_subject_name(cert));
    by_subject_.emplace(subject, x509_ref(cert));
    subject_of_.emplace(fp, subject);
    order_.push_back(fp);
}

std::vector<X509Ptr> IntermediatePool::issuers_of(X509* cert) const {
    std::vector<X509Ptr> out;
    std::lock_guard lock(mu_);
    std::vector<X509*> frontier{cert};
    for (int level = 0; level < 4 && !frontier.empty(); ++level) {
        std::vector<X509*> next;
        for (X509* c : frontier) {
            if (X509_check_issued(c, c) == X509_V_OK) continue;  // self-issued: nothing above it here
            auto [b, e] = by_subject_.equal_range(der_of(X509_get_issuer_name(c)));
            for (auto it = b; it != e; ++it) {
                out.push_back(x509_ref(it->second.get()));
                next.push_back(it->second.get());
            }
        }
        frontier.swap(next);
    }
    return out;
}

size_t IntermediatePool::size() const {
    std::lock_guard lock(mu_);
    return order_.size();
}

void use_intermediate_pool(SSL_CTX* ctx, const IntermediatePool* pool) {
    SSL_CTX_set_cert_verify_callback(ctx, pool_verify, const_cast<IntermediatePool*>(pool));
}

void note_missing_issuer(SSL* ssl, X509* cert) {
    if (!cert || SSL_get_ex_data(ssl, missing_issuer_index())) return;  // the first one counts
    std::string url = aia_url(cert, NID_ad_ca_issuers);
    if (!url.empty()) SSL_set_ex_data(ssl, missing_issuer_index(), new std::string(std::move(url)));
}

std::string missing_issuer_url(SSL* ssl) {
    const auto* url = static_cast<const std::string*>(SSL_get_ex_data(ssl, missing_issuer_index()));
    return url ? *url : std::string();
}

std::string ocsp_request(X509* leaf, X509* issuer) {
    OcspRequestPtr req(OCSP_REQUEST_new());
    OcspCertIdPtr id(OCSP_cert_to_id(nullptr, leaf, issuer));
    if (!req || !id || !OCSP_request_add0_id(req.get(), id.get())) return {};
    id.release();  // owned by the request now
    unsigned char* der = nullptr;
    const int len = i2d_OCSP_REQUEST(req.get(), &der);
    if (len <= 0) return {};
    std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
    OPENSSL_free(der);
    return out;
}

std::string ocsp_cache_key(X509* leaf, X509* issuer) {
    OcspCertIdPtr id(OCSP_cert_to_id(nullptr, leaf, issuer));
    unsigned char* der = nullptr;
    const int len = id ? i2d_OCSP_CERTID(id.get(), &der) : 0;
    if (len <= 0) return {};
    std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
    OPENSSL_free(der);
    return out;
}

OcspAnswer check_ocsp_response(std::string_view der, STACK_OF(X509) * chain, X509_STORE* store, X509* leaf,
                               X509* issuer) {
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    OcspResponsePtr resp(d2i_OCSP_RESPONSE(nullptr, &p, static_cast<long>(der.size())));
    if (!resp) return {OcspAnswer::invalid, "the OCSP response cannot be read"};
    if (const int st = OCSP_response_status(resp.get()); st != OCSP_RESPONSE_STATUS_SUCCESSFUL)
        return {OcspAnswer::unknown, std::string("the OCSP responder answered \"") + OCSP_response_status_str(st) + "\""};
    OcspBasicPtr basic(OCSP_response_get1_basic(resp.get()));
    if (!basic) return {OcspAnswer::invalid, "the OCSP response holds no basic response"};
    if (OCSP_basic_verify(basic.get(), chain, store, 0) <= 0) {
        ERR_clear_error();
        return {OcspAnswer::invalid, "the OCSP response's signature does not verify"};
    }
    OcspCertIdPtr id(OCSP_cert_to_id(nullptr, leaf, issuer));
    int status = -1, reason = -1;
    ASN1_GENERALIZEDTIME *revoked_at = nullptr, *this_update = nullptr, *next_update = nullptr;
    if (!id || !OCSP_resp_find_status(basic.get(), id.get(), &status, &reason, &revoked_at, &this_update, &next_update))
        return {OcspAnswer::unknown, "the OCSP response is about another certificate"};
    if (!OCSP_check_validity(this_update, next_update, 300, -1)) {
        ERR_clear_error();
        return {OcspAnswer::unknown, "the OCSP response is out of date"};
    }
    OcspAnswer out;
    if (next_update) {
        std::tm tm{};
        if (ASN1_TIME_to_tm(next_update, &tm)) out.next_update = timegm(&tm);
    }
    if (status == V_OCSP_CERTSTATUS_REVOKED) out.status = OcspAnswer::revoked;
    else if (status == V_OCSP_CERTSTATUS_GOOD) out.status = OcspAnswer::good;
    else out.detail = "the OCSP responder does not know the certificate";
    return out;
}

}  // namespace vigil::tls

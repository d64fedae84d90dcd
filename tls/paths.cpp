// Path building beyond OpenSSL's first path (tls/webpki.hpp).
#include "tls/webpki.hpp"

#include <openssl/x509_vfy.h>

namespace vigil::tls {
namespace {

constexpr int kMaxAlternatives = 4;

}  // namespace

bool path_error(int err) {
    return err == X509_V_ERR_PERMITTED_VIOLATION || err == X509_V_ERR_EXCLUDED_VIOLATION ||
           err == X509_V_ERR_PATH_LENGTH_EXCEEDED || err == X509_V_ERR_INVALID_CA ||
           err == X509_V_ERR_CERT_CHAIN_TOO_LONG || err == X509_V_ERR_INVALID_PURPOSE ||
           err == X509_V_ERR_CERT_HAS_EXPIRED || err == X509_V_ERR_CERT_NOT_YET_VALID;
}

bool verifies_along_another_path(X509_STORE_CTX* failed, const PublicSuffixList& psl, Strictness strictness) {
    X509* leaf = X509_STORE_CTX_get0_cert(failed);
    STACK_OF(X509)* untrusted = X509_STORE_CTX_get0_untrusted(failed);
    STACK_OF(X509)* path = X509_STORE_CTX_get0_chain(failed);
    if (!leaf || !untrusted || !path) return false;
    int tries = 0;
    for (int i = 1; i < sk_X509_num(path) && tries < kMaxAlternatives; ++i) {
        X509* left_out = sk_X509_value(path, i);
        if (sk_X509_find(untrusted, left_out) < 0) continue;  // a trusted certificate: no other copy to try
        ++tries;
        STACK_OF(X509)* others = sk_X509_new_null();
        for (int k = 0; k < sk_X509_num(untrusted); ++k)
            if (X509_cmp(sk_X509_value(untrusted, k), left_out) != 0) sk_X509_push(others, sk_X509_value(untrusted, k));
        X509_STORE_CTX* ctx = X509_STORE_CTX_new();
        bool good = ctx && X509_STORE_CTX_init(ctx, X509_STORE_CTX_get0_store(failed), leaf, others) == 1;
        if (good) {
            X509_VERIFY_PARAM_set1(X509_STORE_CTX_get0_param(ctx), X509_STORE_CTX_get0_param(failed));
            good = X509_verify_cert(ctx) == 1 && !check_webpki(X509_STORE_CTX_get0_chain(ctx), psl, strictness);
        }
        X509_STORE_CTX_free(ctx);
        sk_X509_free(others);
        if (good) return true;
    }
    return false;
}

}  // namespace vigil::tls

// Owning smart pointers for OpenSSL objects, so no code path leaks or double-frees them.
#pragma once

#include <memory>
#include <string>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace vigil::tls {

template <auto Fn>
struct FnDeleter {
    template <class T>
    void operator()(T* p) const noexcept { Fn(p); }
};

using X509Ptr = std::unique_ptr<X509, FnDeleter<X509_free>>;
using PKeyPtr = std::unique_ptr<EVP_PKEY, FnDeleter<EVP_PKEY_free>>;
using BioPtr = std::unique_ptr<BIO, FnDeleter<BIO_free_all>>;
using X509ReqPtr = std::unique_ptr<X509_REQ, FnDeleter<X509_REQ_free>>;
using X509StorePtr = std::unique_ptr<X509_STORE, FnDeleter<X509_STORE_free>>;
using X509StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, FnDeleter<X509_STORE_CTX_free>>;
using SslCtxPtr = std::unique_ptr<SSL_CTX, FnDeleter<SSL_CTX_free>>;
using X509ExtPtr = std::unique_ptr<X509_EXTENSION, FnDeleter<X509_EXTENSION_free>>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, FnDeleter<GENERAL_NAMES_free>>;
using BignumPtr = std::unique_ptr<BIGNUM, FnDeleter<BN_free>>;
using Asn1IntPtr = std::unique_ptr<ASN1_INTEGER, FnDeleter<ASN1_INTEGER_free>>;

inline void x509_stack_free(STACK_OF(X509) * s) { sk_X509_pop_free(s, X509_free); }
using X509StackPtr = std::unique_ptr<STACK_OF(X509), FnDeleter<x509_stack_free>>;

// Takes a new reference to a certificate (OpenSSL reference counting).
inline X509Ptr x509_ref(X509* x) {
    X509_up_ref(x);
    return X509Ptr(x);
}
inline PKeyPtr pkey_ref(EVP_PKEY* k) {
    EVP_PKEY_up_ref(k);
    return PKeyPtr(k);
}

// The most recent OpenSSL error as text, clearing the error queue ("" if none).
std::string last_openssl_error();

}  // namespace vigil::tls

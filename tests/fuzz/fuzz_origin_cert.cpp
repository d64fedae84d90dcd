// Fuzz target: an origin's certificate as DER, through everything the gateway does with one:
// chain verification against a trust anchor, the plain-words verdict, the fields vigil-ca
// and the block page show, our webpki checks (tls/webpki.hpp), AIA and OCSP parsing
// (tls/revocation.hpp), and minting a leaf for each DNS name the certificate carries.
#include <openssl/x509v3.h>

#include "tls/ca.hpp"
#include "tls/contexts.hpp"
#include "tls/mint.hpp"
#include "tls/mobileconfig.hpp"
#include "tls/revocation.hpp"
#include "tls/webpki.hpp"

namespace {

struct Setup {
    std::shared_ptr<const vigil::tls::PublicSuffixList> psl =
        vigil::tls::PublicSuffixList::parse("com\nuk\nco.uk\n*.ck\n!www.ck\ngithub.io\n");
    std::shared_ptr<vigil::tls::CaMaterial> ca = std::make_shared<vigil::tls::CaMaterial>();
    std::unique_ptr<vigil::tls::LeafMinter> minter;
    Setup() {
        ca->issuer_key = vigil::tls::generate_key(vigil::tls::KeyType::ec_p256);
        ca->issuer = vigil::tls::make_root_cert(ca->issuer_key.get(), "Fuzz", "Fuzz Root", 30);
        ca->root.reset(X509_dup(ca->issuer.get()));
        minter = std::make_unique<vigil::tls::LeafMinter>(ca);
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static Setup setup;
    // The same bytes as an AIA caIssuers response and as an OCSP response about the root.
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    (void)vigil::tls::parse_issuer_certs(bytes);
    {
        vigil::tls::X509StorePtr store(X509_STORE_new());
        X509_STORE_add_cert(store.get(), setup.ca->root.get());
        STACK_OF(X509)* chain = sk_X509_new_null();
        sk_X509_push(chain, setup.ca->root.get());
        (void)vigil::tls::check_ocsp_response(bytes, chain, store.get(), setup.ca->root.get(), setup.ca->root.get());
        sk_X509_free(chain);
    }
    const unsigned char* p = data;
    vigil::tls::X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(size)));
    if (!cert) return 0;
    (void)vigil::tls::verify_chain(cert.get(), {}, {setup.ca->root.get()});
    (void)vigil::tls::describe_verify_error(X509_V_ERR_CERT_HAS_EXPIRED);
    (void)vigil::tls::subject_text(cert.get());
    (void)vigil::tls::issuer_text(cert.get());
    (void)vigil::tls::fingerprint(cert.get(), EVP_sha256());
    (void)vigil::tls::not_before(cert.get());
    (void)vigil::tls::not_after(cert.get());
    (void)vigil::tls::is_ca(cert.get());
    (void)vigil::tls::common_name(cert.get(), "-");
    (void)vigil::tls::aia_url(cert.get(), NID_ad_ca_issuers);
    (void)vigil::tls::aia_url(cert.get(), NID_ad_OCSP);
    // Our own browser-grade checks, on the certificate alone and as a leaf under a root.
    for (int anchored = 0; anchored < 2; ++anchored) {
        STACK_OF(X509)* chain = sk_X509_new_null();
        sk_X509_push(chain, cert.get());
        if (anchored) sk_X509_push(chain, setup.ca->root.get());
        (void)vigil::tls::check_webpki(chain, *setup.psl);
        sk_X509_free(chain);
    }
    (void)X509_check_host(cert.get(), "www.example.com", 0, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, nullptr);
    auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr));
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names) && i < 8; ++i) {
        const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names, i);
        if (gn->type != GEN_DNS) continue;
        const auto* s = reinterpret_cast<const char*>(ASN1_STRING_get0_data(gn->d.dNSName));
        std::string host = vigil::tls::normalize_host(std::string_view(s, static_cast<size_t>(ASN1_STRING_length(gn->d.dNSName))));
        if (!host.empty()) (void)setup.minter->mint(host);
    }
    GENERAL_NAMES_free(names);
    return 0;
}

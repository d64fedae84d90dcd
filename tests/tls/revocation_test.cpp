// AIA URLs, issuer certificates in each format an AIA server sends, the intermediate pool and
// the expiring cache (tls/revocation.hpp). The fetching and OCSP through the real gateway are
// tests/integration/test_origin_certs.py (FetchingTest).
#include "tls/revocation.hpp"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>

#include "tests/tls/test_ca.hpp"

namespace vigil::tls {
namespace {

std::string to_der(X509* c) {
    unsigned char* der = nullptr;
    const int len = i2d_X509(c, &der);
    std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
    OPENSSL_free(der);
    return out;
}

std::string to_pem(X509* c) {
    BioPtr bio(BIO_new(BIO_s_mem()));
    PEM_write_bio_X509(bio.get(), c);
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<size_t>(len));
}

TEST(Revocation, IssuerCertificatesInDerPemAndPkcs7) {
    auto ca = testing::make_test_ca();
    auto der = parse_issuer_certs(to_der(ca->issuer.get()));
    ASSERT_EQ(der.size(), 1u);
    EXPECT_EQ(X509_cmp(der[0].get(), ca->issuer.get()), 0);
    EXPECT_EQ(parse_issuer_certs(to_pem(ca->issuer.get()) + to_pem(ca->root.get())).size(), 2u);
    std::unique_ptr<PKCS7, FnDeleter<PKCS7_free>> p7(PKCS7_new());
    ASSERT_TRUE(PKCS7_set_type(p7.get(), NID_pkcs7_signed));
    ASSERT_TRUE(PKCS7_content_new(p7.get(), NID_pkcs7_data));
    PKCS7_add_certificate(p7.get(), ca->issuer.get());
    PKCS7_add_certificate(p7.get(), ca->root.get());
    unsigned char* p7der = nullptr;
    const int len = i2d_PKCS7(p7.get(), &p7der);
    ASSERT_GT(len, 0);
    const auto p7certs = parse_issuer_certs(std::string(reinterpret_cast<char*>(p7der), static_cast<size_t>(len)));
    OPENSSL_free(p7der);
    EXPECT_EQ(p7certs.size(), 2u);
    EXPECT_TRUE(parse_issuer_certs("").empty());
    EXPECT_TRUE(parse_issuer_certs("<html>not found</html>").empty());
    EXPECT_TRUE(parse_issuer_certs(to_der(ca->issuer.get()).substr(0, 100)).empty());  // truncated
}

TEST(Revocation, AiaUrlsArePlainHttpOnly) {
    auto ca = testing::make_test_ca();
    X509Ptr cert(X509_dup(ca->issuer.get()));
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, ca->root.get(), cert.get(), nullptr, nullptr, 0);
    X509ExtPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, NID_info_access,
                                       "caIssuers;URI:https://a.example/x.der,caIssuers;URI:ldap://b.example/,"
                                       "caIssuers;URI:http://c.example/i.der,OCSP;URI:http://ocsp.example/"));
    ASSERT_TRUE(ext);
    X509_add_ext(cert.get(), ext.get(), -1);
    EXPECT_EQ(aia_url(cert.get(), NID_ad_ca_issuers), "http://c.example/i.der");
    EXPECT_EQ(aia_url(cert.get(), NID_ad_OCSP), "http://ocsp.example/");
    EXPECT_EQ(aia_url(ca->root.get(), NID_ad_ca_issuers), "");
}

TEST(Revocation, PoolFindsIssuersUpTheChainAndStaysBounded) {
    auto a = testing::make_test_ca(), b = testing::make_test_ca(), c = testing::make_test_ca();
    IntermediatePool pool(2);
    pool.add(a->issuer.get());
    pool.add(a->issuer.get());  // the same certificate once
    EXPECT_EQ(pool.size(), 1u);
    pool.add(a->root.get());
    // A leaf-like certificate issued by a's issuing CA: finds the issuer, then its root.
    auto found = pool.issuers_of(a->issuer.get());
    ASSERT_EQ(found.size(), 1u);
    EXPECT_EQ(X509_cmp(found[0].get(), a->root.get()), 0);
    pool.add(b->issuer.get());
    pool.add(c->issuer.get());
    EXPECT_EQ(pool.size(), 2u);  // the oldest went
    EXPECT_TRUE(pool.issuers_of(a->issuer.get()).empty());
}

TEST(Revocation, ExpiringCacheForgetsExpiredAndOldest) {
    ExpiringCache<int> cache(2);
    const auto now = std::chrono::system_clock::now();
    cache.put("gone", 1, now - std::chrono::seconds(1));
    EXPECT_FALSE(cache.get("gone"));
    cache.put("a", 1, now + std::chrono::hours(1));
    cache.put("b", 2, now + std::chrono::hours(1));
    cache.put("c", 3, now + std::chrono::hours(1));
    EXPECT_FALSE(cache.get("a"));
    EXPECT_EQ(cache.get("b"), 2);
    EXPECT_EQ(cache.get("c"), 3);
    for (int i = 0; i < 100; ++i) cache.put("x", i, now - std::chrono::seconds(1)), (void)cache.get("x");
    EXPECT_EQ(cache.get("c"), 3);
}

}  // namespace
}  // namespace vigil::tls

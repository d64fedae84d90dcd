// Our browser-grade chain checks (tls/webpki.cpp), each on certificates built here: one
// passing chain, then one change at a time that must be rejected with the right class.
#include "tls/webpki.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "tls/ca.hpp"

namespace vigil::tls {
namespace {

PKeyPtr keygen(const char* type, const char* param) {
    if (std::string(type) == "RSA") return PKeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(std::stoul(param))));
    return PKeyPtr(EVP_PKEY_Q_keygen(nullptr, nullptr, type, param));
}

struct Spec {
    std::string cn = "www.example.com";
    std::string san = "DNS:www.example.com";  // "" for none
    std::string eku = "serverAuth";           // "" for none
    std::string basic = "critical,CA:FALSE";
    std::vector<unsigned char> serial = {0x01, 0x23, 0x45};
    bool negative_serial = false;
    const EVP_MD* md = EVP_sha256();
};

X509Ptr make_cert(EVP_PKEY* key, const Spec& s, X509* issuer, EVP_PKEY* issuer_key) {
    X509Ptr c(X509_new());
    X509_set_version(c.get(), 2);
    BignumPtr bn(BN_bin2bn(s.serial.data(), static_cast<int>(s.serial.size()), nullptr));
    BN_set_negative(bn.get(), s.negative_serial);
    ASN1_INTEGER* serial = BN_to_ASN1_INTEGER(bn.get(), nullptr);
    X509_set_serialNumber(c.get(), serial);
    ASN1_INTEGER_free(serial);
    X509_gmtime_adj(X509_getm_notBefore(c.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(c.get()), 86400);
    X509_set_pubkey(c.get(), key);
    X509_NAME* name = X509_get_subject_name(c.get());
    if (!s.cn.empty())
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(s.cn.c_str()), -1, -1, 0);
    X509_set_issuer_name(c.get(), issuer ? X509_get_subject_name(issuer) : name);
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, issuer ? issuer : c.get(), c.get(), nullptr, nullptr, 0);
    auto add = [&](int nid, const std::string& value) {
        if (value.empty()) return;
        X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value.c_str());
        ASSERT_NE(ext, nullptr) << value;
        X509_add_ext(c.get(), ext, -1);
        X509_EXTENSION_free(ext);
    };
    add(NID_basic_constraints, s.basic);
    add(NID_subject_alt_name, s.san);
    add(NID_ext_key_usage, s.eku);
    X509_sign(c.get(), issuer_key ? issuer_key : key, s.md);
    return c;
}

class Webpki : public ::testing::Test {
protected:
    std::shared_ptr<const PublicSuffixList> psl =
        PublicSuffixList::parse("// comment\ncom\nuk\nco.uk\nio\ngithub.io\n*.ck\n!www.ck\n");
    PKeyPtr root_key = keygen("EC", "P-256");
    X509Ptr root = make_cert(root_key.get(), Spec{"Test Root", "", "", "critical,CA:TRUE"}, nullptr, nullptr);

    // The leaf for `spec` under the root (optionally through an intermediate), checked.
    std::optional<ChainProblem> check(const Spec& spec, EVP_PKEY* leaf_key = nullptr, const Spec* inter = nullptr,
                                      EVP_PKEY* inter_key = nullptr, Strictness strictness = Strictness::browser) {
        PKeyPtr own = keygen("EC", "P-256");
        X509Ptr mid;
        X509* issuer = root.get();
        EVP_PKEY* issuer_key = root_key.get();
        if (inter) {
            mid = make_cert(inter_key ? inter_key : root_key.get(), *inter, root.get(), root_key.get());
            issuer = mid.get();
            issuer_key = inter_key ? inter_key : root_key.get();
        }
        X509Ptr leaf = make_cert(leaf_key ? leaf_key : own.get(), spec, issuer, issuer_key);
        STACK_OF(X509)* chain = sk_X509_new_null();
        sk_X509_push(chain, leaf.get());
        if (mid) sk_X509_push(chain, mid.get());
        sk_X509_push(chain, root.get());
        auto result = check_webpki(chain, *psl, strictness);
        sk_X509_free(chain);
        return result;
    }
    void expect(const Spec& spec, const std::string& code, const std::string& words, EVP_PKEY* key = nullptr,
                Strictness strictness = Strictness::browser) {
        auto p = check(spec, key, nullptr, nullptr, strictness);
        ASSERT_TRUE(p.has_value()) << "accepted: " << words;
        EXPECT_EQ(p->code, code) << p->reason;
        EXPECT_NE(p->reason.find(words), std::string::npos) << p->reason;
    }
};

TEST_F(Webpki, ACorrectChainPasses) {
    EXPECT_FALSE(check(Spec{}).has_value());
    EXPECT_FALSE(check(Spec{"", "DNS:a.example.com,IP:192.0.2.7"}).has_value());  // no CN at all is fine
    EXPECT_FALSE(check(Spec{"192.0.2.7", "IP:192.0.2.7"}).has_value());
    EXPECT_FALSE(check(Spec{"*.example.co.uk", "DNS:*.example.co.uk"}).has_value());
    EXPECT_FALSE(check(Spec{"x.www.ck", "DNS:*.www.ck,DNS:x.www.ck"}).has_value());  // www.ck is an exception
    PKeyPtr rsa = keygen("RSA", "2048"), p384 = keygen("EC", "P-384");
    EXPECT_FALSE(check(Spec{}, rsa.get()).has_value());
    EXPECT_FALSE(check(Spec{}, p384.get()).has_value());
}

TEST_F(Webpki, LeafMustBeAServerEndEntityWithNames) {
    expect(Spec{"www.example.com", ""}, "malformed", "no subjectAltName");
    expect(Spec{"www.example.com", "email:a@example.com"}, "malformed", "no subjectAltName");
    // No EKU (any use, RFC 5280) and a CN that no SAN repeats: browsers accept both; strict does not.
    EXPECT_FALSE(check(Spec{"www.example.com", "DNS:www.example.com", ""}).has_value());
    EXPECT_FALSE(check(Spec{"other.example.com", "DNS:www.example.com"}).has_value());
    expect(Spec{"www.example.com", "DNS:www.example.com", ""}, "malformed", "no extended key usage", nullptr,
           Strictness::strict);
    expect(Spec{"other.example.com", "DNS:www.example.com"}, "malformed", "in its subject but not in its subjectAltName",
           nullptr, Strictness::strict);
    // Strict: the CN is a byte-exact copy of a SAN; a case difference is named.
    expect(Spec{"WWW.example.com", "DNS:www.example.com"}, "malformed", "differs in letter case", nullptr,
           Strictness::strict);
    EXPECT_FALSE(check(Spec{"WWW.example.com", "DNS:www.example.com"}).has_value());
    EXPECT_FALSE(check(Spec{"www.example.com", "DNS:www.example.com"}, nullptr, nullptr, nullptr, Strictness::strict)
                     .has_value());
    expect(Spec{"www.example.com", "DNS:www.example.com", "clientAuth"}, "malformed", "serverAuth");
    expect(Spec{"www.example.com", "DNS:www.example.com", "anyExtendedKeyUsage"}, "malformed", "serverAuth");
    expect(Spec{"www.example.com", "DNS:www.example.com", "serverAuth", "critical,CA:TRUE"}, "malformed", "CA certificate");
}

TEST_F(Webpki, DnsNamesAndWildcards) {
    for (const std::string bad : {"foo_bar.example.com", "a..example.com", ".example.com", "-a.example.com",
                                  "f*o.example.com", "*.*.example.com", "www.*.example.com", "*", "*.com"}) {
        Spec s{"", "DNS:" + bad};
        expect(s, "malformed", "invalid host");
    }
    for (const std::string suffix : {"*.co.uk", "*.github.io", "*.foo.ck"}) expect(Spec{"", "DNS:" + suffix}, "malformed", "public suffix");
    EXPECT_TRUE(valid_dns_name("xn--bcher-kva.example", false));
    EXPECT_FALSE(valid_dns_name(std::string(64, 'a') + ".example", false));
    EXPECT_FALSE(valid_dns_name("*.example.com", false));
}

TEST_F(Webpki, SerialNumbers) {
    Spec zero;
    zero.serial = {0x00};
    expect(zero, "malformed", "not positive");
    Spec negative;
    negative.negative_serial = true;
    expect(negative, "malformed", "not positive");
    Spec long_serial;
    long_serial.serial = std::vector<unsigned char>(21, 0x42);
    expect(long_serial, "malformed", "longer than 20 bytes");
    Spec twenty;
    twenty.serial = std::vector<unsigned char>(20, 0x42);
    EXPECT_FALSE(check(twenty).has_value());
}

TEST_F(Webpki, KeysAndSignatures) {
    PKeyPtr rsa1024 = keygen("RSA", "1024"), rsa2052 = keygen("RSA", "2052"), k1 = keygen("EC", "secp256k1");
    expect(Spec{}, "weak_crypto", "1024-bit RSA", rsa1024.get());
    expect(Spec{}, "malformed", "not a whole number of bytes", rsa2052.get());
    expect(Spec{}, "weak_crypto", "elliptic curve secp256k1", k1.get());
    Spec sha1;
    sha1.md = EVP_sha1();
    expect(sha1, "weak_crypto", "signed with SHA1");
    // Below the root counts: an intermediate signed with SHA-1 is refused, as is a weak key there.
    Spec inter{"Intermediate", "", "", "critical,CA:TRUE"};
    inter.md = EVP_sha1();
    auto p = check(Spec{}, nullptr, &inter);
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(p->code, "weak_crypto");
    EXPECT_NE(p->reason.find("intermediate"), std::string::npos) << p->reason;
    Spec good_inter{"Intermediate", "", "", "critical,CA:TRUE"};
    EXPECT_FALSE(check(Spec{}, nullptr, &good_inter).has_value());
    PKeyPtr weak_inter = keygen("RSA", "1024");
    p = check(Spec{}, nullptr, &good_inter, weak_inter.get());
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(p->code, "weak_crypto");
    // The trust anchor itself is not judged (it is trusted by configuration, not by its form).
    Spec sha1_root{"Old Root", "", "", "critical,CA:TRUE"};
    sha1_root.md = EVP_sha1();
    root = make_cert(root_key.get(), sha1_root, nullptr, nullptr);
    EXPECT_FALSE(check(Spec{}).has_value());
}

TEST(PublicSuffixList, RulesWildcardsExceptionsAndTheImplicitStar) {
    auto psl = PublicSuffixList::parse("com\nco.uk\n*.ck\n!www.ck\n// ===BEGIN PRIVATE DOMAINS===\ngithub.io\n");
    for (const char* yes : {"com", "co.uk", "foo.ck", "github.io", "unlisted", "COM"}) EXPECT_TRUE(psl->is_public_suffix(yes)) << yes;
    for (const char* no : {"example.com", "example.co.uk", "www.ck", "user.github.io", "a.foo.ck"})
        EXPECT_FALSE(psl->is_public_suffix(no)) << no;
    // Debian's list, as the gateway loads it.
    auto real = PublicSuffixList::load(PublicSuffixList::kDefaultPath);
    EXPECT_GT(real->size(), 5000u);
    EXPECT_TRUE(real->is_public_suffix("co.uk"));
    EXPECT_FALSE(real->is_public_suffix("bbc.co.uk"));
    EXPECT_THROW(PublicSuffixList::load("/nonexistent/psl.dat"), TlsError);
}

}  // namespace
}  // namespace vigil::tls

// The minted leaf's profile, field by field, and that its chain verifies with OpenSSL's verifier.
#include "tls/mint.hpp"

#include <gtest/gtest.h>

#include <ctime>

#include "tests/tls/test_ca.hpp"

namespace vigil::tls {
namespace {

std::vector<std::string> san_entries(X509* cert, int type) {
    std::vector<std::string> out;
    GeneralNamesPtr names(static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names.get()); ++i) {
        GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
        if (gn->type != type) continue;
        const ASN1_STRING* s = type == GEN_DNS ? gn->d.dNSName : gn->d.iPAddress;
        out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), ASN1_STRING_length(s));
    }
    return out;
}

bool ext_critical(X509* cert, int nid) {
    int idx = X509_get_ext_by_NID(cert, nid, -1);
    return idx >= 0 && X509_EXTENSION_get_critical(X509_get_ext(cert, idx));
}

int verify_chain(const CaMaterial& ca, X509* leaf, const char* host) {
    X509StorePtr store(X509_STORE_new());
    X509_STORE_add_cert(store.get(), ca.root.get());
    X509StackPtr untrusted(sk_X509_new_null());
    for (const auto& c : ca.chain) sk_X509_push(untrusted.get(), c.get());
    X509StoreCtxPtr ctx(X509_STORE_CTX_new());
    X509_STORE_CTX_init(ctx.get(), store.get(), leaf, untrusted.get());
    X509_VERIFY_PARAM* p = X509_STORE_CTX_get0_param(ctx.get());
    X509_VERIFY_PARAM_set_purpose(p, X509_PURPOSE_SSL_SERVER);
    X509_VERIFY_PARAM_set_flags(p, X509_V_FLAG_X509_STRICT);
    X509_VERIFY_PARAM_set_hostflags(p, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
    if (canonical_ip(host).empty()) X509_VERIFY_PARAM_set1_host(p, host, 0);
    else X509_VERIFY_PARAM_set1_ip_asc(p, host);
    int ok = X509_verify_cert(ctx.get());
    int err = X509_STORE_CTX_get_error(ctx.get());
    sk_X509_zero(untrusted.get());  // borrowed pointers
    return ok == 1 ? X509_V_OK : err;
}

TEST(Mint, LeafProfile) {
    auto ca = testing::make_test_ca();
    LeafMinter minter(ca);
    std::time_t before = std::time(nullptr);
    auto m = minter.mint("www.example.com");
    X509* leaf = m->leaf.get();

    EXPECT_EQ(san_entries(leaf, GEN_DNS), std::vector<std::string>{"www.example.com"});
    EXPECT_TRUE(san_entries(leaf, GEN_IPADD).empty());
    EXPECT_EQ(subject_text(leaf), "CN=www.example.com");
    EXPECT_EQ(X509_NAME_cmp(X509_get_issuer_name(leaf), X509_get_subject_name(ca->issuer.get())), 0);

    // basicConstraints CA:FALSE (critical), keyUsage digitalSignature only (critical), EKU serverAuth.
    EXPECT_FALSE(is_ca(leaf));
    EXPECT_TRUE(ext_critical(leaf, NID_basic_constraints));
    EXPECT_EQ(X509_get_key_usage(leaf), static_cast<uint32_t>(KU_DIGITAL_SIGNATURE));
    EXPECT_TRUE(ext_critical(leaf, NID_key_usage));
    EXPECT_EQ(X509_get_extended_key_usage(leaf), static_cast<uint32_t>(XKU_SSL_SERVER));

    // AKI = the issuing CA's SKI.
    ASSERT_NE(X509_get0_authority_key_id(leaf), nullptr);
    EXPECT_EQ(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(leaf), X509_get0_subject_key_id(ca->issuer.get())), 0);

    // Random positive serial of at least 64 bits.
    BignumPtr serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), nullptr));
    EXPECT_FALSE(BN_is_negative(serial.get()));
    EXPECT_GE(BN_num_bits(serial.get()), 64);

    // Validity: an hour back, at most 47 days ahead.
    EXPECT_NEAR(static_cast<double>(not_before(leaf)), static_cast<double>(before - 3600), 5);
    EXPECT_LE(not_after(leaf), std::time(nullptr) + 47L * 86400);
    EXPECT_GT(not_after(leaf), before + 46L * 86400);
    EXPECT_EQ(m->expires, not_after(leaf));

    // Leaf key: ECDSA P-256, and never the CA's key.
    EVP_PKEY* pub = X509_get0_pubkey(leaf);
    EXPECT_EQ(describe_key(pub), "EC P-256");
    EXPECT_NE(EVP_PKEY_eq(pub, ca->issuer_key.get()), 1);
    EXPECT_NE(EVP_PKEY_eq(pub, X509_get0_pubkey(ca->root.get())), 1);
    EXPECT_EQ(EVP_PKEY_eq(pub, minter.leaf_key()), 1);

    EXPECT_EQ(verify_chain(*ca, leaf, "www.example.com"), X509_V_OK);
    EXPECT_EQ(verify_chain(*ca, leaf, "other.example.com"), X509_V_ERR_HOSTNAME_MISMATCH);
}

TEST(Mint, SerialsDiffer) {
    LeafMinter minter(testing::make_test_ca());
    auto a = minter.mint("a.example"), b = minter.mint("a.example");
    EXPECT_NE(ASN1_INTEGER_cmp(X509_get0_serialNumber(a->leaf.get()), X509_get0_serialNumber(b->leaf.get())), 0);
}

TEST(Mint, IpLiteralGetsIpSan) {
    auto ca = testing::make_test_ca();
    LeafMinter minter(ca);
    auto m = minter.mint("192.0.2.7");
    EXPECT_TRUE(san_entries(m->leaf.get(), GEN_DNS).empty());
    ASSERT_EQ(san_entries(m->leaf.get(), GEN_IPADD).size(), 1u);
    EXPECT_EQ(verify_chain(*ca, m->leaf.get(), "192.0.2.7"), X509_V_OK);
    auto v6 = minter.mint("2001:db8::1");
    EXPECT_EQ(verify_chain(*ca, v6->leaf.get(), "2001:db8::1"), X509_V_OK);
}

TEST(Mint, LongNamesHaveNoCn) {
    LeafMinter minter(testing::make_test_ca());
    std::string host = std::string(70, 'a') + ".example";
    auto m = minter.mint(host);
    EXPECT_EQ(subject_text(m->leaf.get()), "");
    EXPECT_EQ(san_entries(m->leaf.get(), GEN_DNS), std::vector<std::string>{host});
}

TEST(Mint, NeverOutlivesTheIssuer) {
    auto ca = testing::make_test_ca();
    PKeyPtr root_key = generate_key(KeyType::ec_p256);
    ca->root = make_root_cert(root_key.get(), "T", "Short root", 3650);
    ca->issuer = make_issuing_cert(ca->issuer_key.get(), ca->root.get(), root_key.get(), "T", "Short issuing", 10);
    ca->chain.clear();
    ca->chain.push_back(x509_ref(ca->issuer.get()));
    LeafMinter minter(ca);
    auto m = minter.mint("short.example");
    EXPECT_LE(not_after(m->leaf.get()), not_after(ca->issuer.get()));
}

TEST(Mint, NormalizeHost) {
    EXPECT_EQ(normalize_host("WWW.Example.COM."), "www.example.com");
    EXPECT_EQ(normalize_host("[2001:DB8::1]"), "2001:db8::1");
    EXPECT_EQ(normalize_host("10.0.0.1"), "10.0.0.1");
    EXPECT_EQ(normalize_host("bad host"), "");
    EXPECT_EQ(normalize_host("a..b"), "");
    EXPECT_EQ(normalize_host(""), "");
    EXPECT_EQ(normalize_host(std::string(64, 'a') + ".com"), "");  // label over 63
}

}  // namespace
}  // namespace vigil::tls

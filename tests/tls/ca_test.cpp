// CA creation and loading: extensions of root and issuing CA, permission and mismatch refusals.
#include "tls/ca.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <ctime>
#include <filesystem>

#include "tests/tls/test_ca.hpp"

namespace vigil::tls {
namespace {

namespace fs = std::filesystem;

struct TempDir {
    fs::path path;
    TempDir() {
        char tmpl[] = "/tmp/vigil-ca-test-XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~TempDir() { fs::remove_all(path); }
};

void write_ca(const fs::path& dir, const CaMaterial& ca, unsigned key_mode = 0600) {
    write_file_atomic(dir / "root.pem", cert_to_pem(ca.root.get()), 0644);
    write_file_atomic(dir / "issuing.pem", cert_to_pem(ca.issuer.get()), 0644);
    write_file_atomic(dir / "issuing.key", key_to_pem(ca.issuer_key.get()), key_mode);
}

TEST(Ca, RootAndIssuingHaveCaExtensions) {
    auto ca = testing::make_test_ca();
    EXPECT_TRUE(is_ca(ca->root.get()));
    EXPECT_TRUE(is_ca(ca->issuer.get()));
    EXPECT_EQ(X509_get_key_usage(ca->root.get()) & (KU_KEY_CERT_SIGN | KU_CRL_SIGN), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    EXPECT_EQ(X509_get_pathlen(ca->issuer.get()), 0);
    EXPECT_EQ(X509_get_pathlen(ca->root.get()), -1);
    ASSERT_NE(X509_get0_subject_key_id(ca->root.get()), nullptr);
    // The issuing CA names the root's key as its authority.
    EXPECT_EQ(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(ca->issuer.get()),
                                    X509_get0_subject_key_id(ca->root.get())),
              0);
    EXPECT_EQ(X509_verify(ca->issuer.get(), X509_get0_pubkey(ca->root.get())), 1);
    EXPECT_LE(not_after(ca->issuer.get()), not_after(ca->root.get()));
}

TEST(Ca, RootAndIssuingFieldByField) {
    auto ca = testing::make_test_ca();
    X509* root = ca->root.get();
    X509* iss = ca->issuer.get();
    EXPECT_EQ(X509_get_version(root), 2);  // v3
    EXPECT_EQ(subject_text(root), "CN=Test Root,O=Test");
    EXPECT_EQ(issuer_text(root), subject_text(root));           // self-issued
    EXPECT_EQ(X509_verify(root, X509_get0_pubkey(root)), 1);   // and self-signed
    EXPECT_EQ(subject_text(iss), "CN=Test Issuing,O=Test");
    EXPECT_EQ(issuer_text(iss), subject_text(root));
    for (X509* c : {root, iss}) {
        BignumPtr serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(c), nullptr));
        EXPECT_FALSE(BN_is_negative(serial.get()));
        EXPECT_GE(BN_num_bits(serial.get()), 64);
        int idx = X509_get_ext_by_NID(c, NID_basic_constraints, -1);
        ASSERT_GE(idx, 0);
        EXPECT_TRUE(X509_EXTENSION_get_critical(X509_get_ext(c, idx)));
        EXPECT_EQ(X509_get_signature_nid(c), NID_ecdsa_with_SHA256);
        EXPECT_LE(not_before(c), std::time(nullptr) - 3500);  // back-dated an hour
    }
    EXPECT_NEAR(static_cast<double>(not_after(root) - not_before(root)), 3650.0 * 86400 + 3600, 5);
    EXPECT_NEAR(static_cast<double>(not_after(iss) - not_before(iss)), 365.0 * 86400 + 3600, 5);
    EXPECT_EQ(X509_get_key_usage(iss) & KU_KEY_CERT_SIGN, static_cast<uint32_t>(KU_KEY_CERT_SIGN));
    EXPECT_EQ(verify_chain(iss, {}, {root}), "");
}

TEST(Ca, EncryptedKeysAndExports) {
    PKeyPtr key = generate_key(KeyType::ec_p256);
    std::string pem = key_to_encrypted_pem(key.get(), "a long passphrase");
    EXPECT_NE(pem.find("ENCRYPTED PRIVATE KEY"), std::string::npos);
    EXPECT_THROW(key_to_encrypted_pem(key.get(), "short"), TlsError);
    auto ca = testing::make_test_ca();
    std::string p12 = certs_to_p12({ca->root.get()}, "root");
    EXPECT_GT(p12.size(), 100u);
    EXPECT_EQ(cert_to_der(ca->root.get()).size(), static_cast<size_t>(i2d_X509(ca->root.get(), nullptr)));
    X509ReqPtr csr = make_issuing_csr(key.get(), "Org", "Issuing");
    EXPECT_EQ(X509_REQ_verify(csr.get(), key.get()), 1);
    EXPECT_NE(csr_to_pem(csr.get()).find("CERTIFICATE REQUEST"), std::string::npos);
}

TEST(Ca, RsaKeysWork) {
    auto ca = testing::make_test_ca(KeyType::rsa_3072);
    EXPECT_EQ(describe_key(ca->issuer_key.get()), "RSA 3072");
}

TEST(Ca, LoadsWhatWasWritten) {
    TempDir d;
    auto ca = testing::make_test_ca();
    write_ca(d.path, *ca);
    CaMaterial loaded = load_ca_dir(d.path);
    EXPECT_EQ(X509_cmp(loaded.issuer.get(), ca->issuer.get()), 0);
    ASSERT_EQ(loaded.chain.size(), 1u);
    EXPECT_EQ(X509_cmp(loaded.chain[0].get(), ca->issuer.get()), 0);
    struct stat st {};
    ASSERT_EQ(::stat((d.path / "issuing.key").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(Ca, RefusesKeyReadableByOthers) {
    TempDir d;
    write_ca(d.path, *testing::make_test_ca(), 0644);
    try {
        load_ca_dir(d.path);
        FAIL() << "a world-readable key was accepted";
    } catch (const TlsError& e) {
        EXPECT_NE(std::string(e.what()).find("chmod 600"), std::string::npos) << e.what();
    }
}

TEST(Ca, RefusesMismatchedKey) {
    TempDir d;
    auto ca = testing::make_test_ca();
    write_ca(d.path, *ca);
    write_file_atomic(d.path / "issuing.key", key_to_pem(generate_key(KeyType::ec_p256).get()), 0600);
    EXPECT_THROW(load_ca_dir(d.path), TlsError);
}

TEST(Ca, MissingDirectorySaysHowToCreateOne) {
    try {
        load_ca_dir("/nonexistent/vigil-ca");
        FAIL();
    } catch (const TlsError& e) {
        EXPECT_NE(std::string(e.what()).find("vigil-ca init"), std::string::npos);
    }
}

}  // namespace
}  // namespace vigil::tls

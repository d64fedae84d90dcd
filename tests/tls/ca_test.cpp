// CA creation and loading: extensions of root and issuing CA, permission and mismatch refusals.
#include "tls/ca.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

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

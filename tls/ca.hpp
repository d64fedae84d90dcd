// The interception CA: key generation, root/issuing certificate creation, and loading a CA directory.
#pragma once

#include <ctime>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "tls/openssl_ptr.hpp"

namespace vigil::tls {

// Thrown at start-up and by the CA tools; never on the data path.
class TlsError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

enum class KeyType { ec_p256, ec_p384, rsa_2048, rsa_3072, rsa_4096 };

std::optional<KeyType> parse_key_type(std::string_view name);
PKeyPtr generate_key(KeyType type);
std::string describe_key(EVP_PKEY* key);  // "EC P-256", "RSA 3072"

// What a gateway needs from a CA directory. The issuer signs leaves; `chain` is what
// follows the leaf on the wire (the issuing CA, never the root).
struct CaMaterial {
    X509Ptr root;
    X509Ptr issuer;
    PKeyPtr issuer_key;
    std::vector<X509Ptr> chain;
};

// Loads root.pem + issuing.pem + issuing.key, or root.pem + root.key when there is no
// issuing CA. Refuses keys readable by group/others, mismatched keys, non-CA or expired
// issuers, with a message that says what to do.
CaMaterial load_ca_dir(const std::filesystem::path& dir);

// Certificate creation for vigil-ca.
X509Ptr make_root_cert(EVP_PKEY* key, const std::string& org, const std::string& cn, int days);
X509Ptr make_issuing_cert(EVP_PKEY* key, X509* root, EVP_PKEY* root_key, const std::string& org,
                          const std::string& cn, int days);

// PEM and file helpers.
X509Ptr read_cert_file(const std::filesystem::path& path);
std::vector<X509Ptr> read_certs_file(const std::filesystem::path& path);
PKeyPtr read_key_file(const std::filesystem::path& path);
// Reads a PEM key that may be encrypted (PKCS#8); a wrong passphrase is a clear TlsError.
PKeyPtr read_key_file(const std::filesystem::path& path, const std::string& passphrase);
// PKCS#8 PEM encrypted with AES-256-CBC under `passphrase` (for keys stored offline).
std::string key_to_encrypted_pem(EVP_PKEY* key, const std::string& passphrase);
std::string cert_to_der(X509* cert);
// A PKCS#12 bundle holding certificates only (no key), empty password, as Windows imports it.
std::string certs_to_p12(const std::vector<X509*>& certs, const std::string& friendly_name);
// A certificate signing request for an issuing CA (CA:TRUE, pathlen:0, keyCertSign).
X509ReqPtr make_issuing_csr(EVP_PKEY* key, const std::string& org, const std::string& cn);
std::string csr_to_pem(X509_REQ* req);
// Verifies `cert` against `trusted` roots with the intermediates in `chain`; "" when it verifies.
std::string verify_chain(X509* cert, const std::vector<X509*>& chain, const std::vector<X509*>& trusted);

// "" when the CA folder's issuing.pem (issuing CA + intermediates) verifies up to its root.pem
// (or there is no issuing.pem), else why not. The folder is only usable when it does: the
// root is what vigil-ca kit deploys to every client.
std::string check_ca_dir_chain(const std::filesystem::path& dir);
std::string cert_to_pem(X509* cert);
std::string key_to_pem(EVP_PKEY* key);
// Writes via a temporary file and rename, so a crash never leaves a half-written file.
void write_file_atomic(const std::filesystem::path& path, const std::string& content, unsigned mode);
// Throws when a key file can be read by group or others.
void check_key_permissions(const std::filesystem::path& path);

// Inspection helpers.
std::string fingerprint(X509* cert, const EVP_MD* md);  // "AB:CD:..."
std::string subject_text(X509* cert);                   // "CN=..., O=..."
std::string issuer_text(X509* cert);
std::time_t not_before(X509* cert);
std::time_t not_after(X509* cert);
bool is_ca(X509* cert);
// Sets a random positive 128-bit serial number.
void set_random_serial(X509* cert);

}  // namespace vigil::tls

// CA material: generating keys, creating root and issuing certificates, loading a CA directory.
#include "tls/ca.hpp"
#include "core/encoding.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>

namespace vigil::tls {

std::string last_openssl_error() {
    unsigned long code = 0;
    unsigned long last = 0;
    while ((code = ERR_get_error()) != 0) last = code;
    if (last == 0) return "";
    char buf[256];
    ERR_error_string_n(last, buf, sizeof buf);
    return buf;
}

namespace {

[[noreturn]] void fail(const std::string& what) {
    std::string detail = last_openssl_error();
    throw TlsError(detail.empty() ? what : what + " (" + detail + ")");
}

const EVP_MD* digest_for(EVP_PKEY* key) {
    if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC && EVP_PKEY_get_bits(key) > 256) return EVP_sha384();
    return EVP_sha256();
}

void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    X509ExtPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
    if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) fail(std::string("cannot add extension ") + OBJ_nid2sn(nid));
}

X509Ptr new_ca_cert(EVP_PKEY* key, const std::string& org, const std::string& cn, int days) {
    if (days <= 0) throw TlsError("validity must be at least one day");
    X509Ptr cert(X509_new());
    if (!cert) fail("X509_new");
    X509_set_version(cert.get(), 2);
    set_random_serial(cert.get());
    X509_NAME* name = X509_get_subject_name(cert.get());
    if (!org.empty())
        X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(org.c_str()), -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
    // Back-date by an hour so clients with slightly slow clocks accept a fresh CA.
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
    X509_time_adj_ex(X509_getm_notAfter(cert.get()), days, 0, nullptr);
    if (X509_set_pubkey(cert.get(), key) != 1) fail("cannot set public key");
    return cert;
}

std::time_t asn1_to_time(const ASN1_TIME* t) {
    std::tm tm{};
    if (ASN1_TIME_to_tm(t, &tm) != 1) return 0;
    return timegm(&tm);
}

std::string name_text(X509_NAME* name) {
    BioPtr bio(BIO_new(BIO_s_mem()));
    X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
    char* data = nullptr;
    long len = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<size_t>(len));
}

std::string read_whole(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw TlsError(path.string() + ": cannot read");
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace

std::optional<KeyType> parse_key_type(std::string_view name) {
    if (name == "ec-p256") return KeyType::ec_p256;
    if (name == "ec-p384") return KeyType::ec_p384;
    if (name == "rsa-2048") return KeyType::rsa_2048;
    if (name == "rsa-3072") return KeyType::rsa_3072;
    if (name == "rsa-4096") return KeyType::rsa_4096;
    return std::nullopt;
}

PKeyPtr generate_key(KeyType type) {
    EVP_PKEY* key = nullptr;
    switch (type) {
        case KeyType::ec_p256: key = EVP_EC_gen("P-256"); break;
        case KeyType::ec_p384: key = EVP_EC_gen("P-384"); break;
        case KeyType::rsa_2048: key = EVP_RSA_gen(2048); break;
        case KeyType::rsa_3072: key = EVP_RSA_gen(3072); break;
        case KeyType::rsa_4096: key = EVP_RSA_gen(4096); break;
    }
    if (!key) fail("key generation failed");
    return PKeyPtr(key);
}

std::string describe_key(EVP_PKEY* key) {
    int bits = EVP_PKEY_get_bits(key);
    switch (EVP_PKEY_get_base_id(key)) {
        case EVP_PKEY_EC: return "EC P-" + std::to_string(bits == 521 ? 521 : bits);
        case EVP_PKEY_RSA: return "RSA " + std::to_string(bits);
        default: return std::string(OBJ_nid2sn(EVP_PKEY_get_base_id(key))) + " " + std::to_string(bits);
    }
}

void set_random_serial(X509* cert) {
    unsigned char bytes[16];
    if (RAND_bytes(bytes, sizeof bytes) != 1) fail("RAND_bytes");
    bytes[0] &= 0x7f;  // positive
    bytes[0] |= 0x40;  // and never shorter than 128 bits minus one, never zero
    BignumPtr bn(BN_bin2bn(bytes, sizeof bytes, nullptr));
    if (!bn || !BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert))) fail("cannot set serial");
}

X509Ptr make_root_cert(EVP_PKEY* key, const std::string& org, const std::string& cn, int days) {
    X509Ptr cert = new_ca_cert(key, org, cn, days);
    X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get()));
    add_ext(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE");
    add_ext(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign");
    add_ext(cert.get(), cert.get(), NID_subject_key_identifier, "hash");
    if (X509_sign(cert.get(), key, digest_for(key)) <= 0) fail("cannot sign root certificate");
    return cert;
}

X509Ptr make_issuing_cert(EVP_PKEY* key, X509* root, EVP_PKEY* root_key, const std::string& org,
                          const std::string& cn, int days) {
    X509Ptr cert = new_ca_cert(key, org, cn, days);
    X509_set_issuer_name(cert.get(), X509_get_subject_name(root));
    // Never outlive the root: clients would reject the chain after the root expires anyway.
    if (ASN1_TIME_compare(X509_get0_notAfter(cert.get()), X509_get0_notAfter(root)) > 0)
        X509_set1_notAfter(cert.get(), X509_get0_notAfter(root));
    add_ext(cert.get(), root, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
    add_ext(cert.get(), root, NID_key_usage, "critical,digitalSignature,keyCertSign,cRLSign");
    add_ext(cert.get(), root, NID_subject_key_identifier, "hash");
    add_ext(cert.get(), root, NID_authority_key_identifier, "keyid:always");
    if (X509_sign(cert.get(), root_key, digest_for(root_key)) <= 0) fail("cannot sign issuing certificate");
    return cert;
}

X509Ptr read_cert_file(const std::filesystem::path& path) {
    auto certs = read_certs_file(path);
    return std::move(certs.front());
}

std::vector<X509Ptr> read_certs_file(const std::filesystem::path& path) {
    std::string pem = read_whole(path);
    BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    std::vector<X509Ptr> out;
    while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) out.emplace_back(x);
    ERR_clear_error();  // the loop always ends on a "no start line" error
    if (out.empty()) throw TlsError(path.string() + ": no PEM certificate found");
    return out;
}

PKeyPtr read_key_file(const std::filesystem::path& path) {
    std::string pem = read_whole(path);
    BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    // An empty passphrase callback result makes an encrypted key fail instead of prompting.
    auto no_prompt = [](char*, int, int, void*) -> int { return 0; };
    PKeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_prompt, nullptr));
    OPENSSL_cleanse(pem.data(), pem.size());
    if (!key) {
        ERR_clear_error();
        throw TlsError(path.string() + ": not a readable unencrypted PEM private key");
    }
    return key;
}

PKeyPtr read_key_file(const std::filesystem::path& path, const std::string& passphrase) {
    std::string pem = read_whole(path);
    BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    PKeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, const_cast<char*>(passphrase.c_str())));
    OPENSSL_cleanse(pem.data(), pem.size());
    if (!key) {
        ERR_clear_error();
        throw TlsError(path.string() + ": cannot decrypt the private key (wrong passphrase?)");
    }
    return key;
}

std::string key_to_encrypted_pem(EVP_PKEY* key, const std::string& passphrase) {
    if (passphrase.size() < 8) throw TlsError("the passphrase must be at least 8 characters");
    BioPtr bio(BIO_new(BIO_s_mem()));
    if (PEM_write_bio_PKCS8PrivateKey(bio.get(), key, EVP_aes_256_cbc(), passphrase.data(),
                                      static_cast<int>(passphrase.size()), nullptr, nullptr) != 1)
        fail("cannot encrypt the private key");
    char* data = nullptr;
    long len = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<size_t>(len));
}

std::string cert_to_der(X509* cert) {
    int len = i2d_X509(cert, nullptr);
    std::string out(static_cast<size_t>(len), '\0');
    auto* p = reinterpret_cast<unsigned char*>(out.data());
    i2d_X509(cert, &p);
    return out;
}

std::string certs_to_p12(const std::vector<X509*>& certs, const std::string& friendly_name) {
    X509StackPtr stack(sk_X509_new_null());
    for (X509* c : certs) sk_X509_push(stack.get(), x509_ref(c).release());
    // No key, no encryption of the certificates (-1), MAC with the empty password.
    PKCS12* p12 = PKCS12_create("", friendly_name.c_str(), nullptr, nullptr, stack.get(), -1, -1, 0, 0, 0);
    if (!p12) fail("cannot build the PKCS#12 bundle");
    BioPtr bio(BIO_new(BIO_s_mem()));
    i2d_PKCS12_bio(bio.get(), p12);
    PKCS12_free(p12);
    char* data = nullptr;
    long len = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<size_t>(len));
}

X509ReqPtr make_issuing_csr(EVP_PKEY* key, const std::string& org, const std::string& cn) {
    X509ReqPtr req(X509_REQ_new());
    X509_REQ_set_version(req.get(), 0);
    X509_NAME* name = X509_REQ_get_subject_name(req.get());
    if (!org.empty())
        X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(org.c_str()), -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
    X509_REQ_set_pubkey(req.get(), key);
    STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, nullptr, nullptr, req.get(), nullptr, 0);
    for (auto [nid, value] : {std::pair{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
                              std::pair{NID_key_usage, "critical,digitalSignature,keyCertSign,cRLSign"}}) {
        X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
        if (ext) sk_X509_EXTENSION_push(exts, ext);
    }
    X509_REQ_add_extensions(req.get(), exts);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    if (X509_REQ_sign(req.get(), key, digest_for(key)) <= 0) fail("cannot sign the CSR");
    return req;
}

std::string csr_to_pem(X509_REQ* req) {
    BioPtr bio(BIO_new(BIO_s_mem()));
    PEM_write_bio_X509_REQ(bio.get(), req);
    char* data = nullptr;
    long len = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<size_t>(len));
}

std::string verify_chain(X509* cert, const std::vector<X509*>& chain, const std::vector<X509*>& trusted) {
    X509StorePtr store(X509_STORE_new());
    for (X509* t : trusted) X509_STORE_add_cert(store.get(), t);
    X509StackPtr untrusted(sk_X509_new_null());
    for (X509* c : chain) sk_X509_push(untrusted.get(), x509_ref(c).release());
    X509StoreCtxPtr ctx(X509_STORE_CTX_new());
    X509_STORE_CTX_init(ctx.get(), store.get(), cert, untrusted.get());
    if (X509_verify_cert(ctx.get()) == 1) return "";
    return X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
}

std::string cert_to_pem(X509* cert) {
    BioPtr bio(BIO_new(BIO_s_mem()));
    PEM_write_bio_X509(bio.get(), cert);
    char* data = nullptr;
    long len = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<size_t>(len));
}

std::string key_to_pem(EVP_PKEY* key) {
    BioPtr bio(BIO_new(BIO_s_mem()));
    PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
    char* data = nullptr;
    long len = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<size_t>(len));
}

void write_file_atomic(const std::filesystem::path& path, const std::string& content, unsigned mode) {
    std::filesystem::path tmp = path;
    tmp += ".tmp." + std::to_string(::getpid());
    // Create with the final mode so a key is never readable by others, not even briefly.
    FILE* f = nullptr;
    {
        mode_t old = ::umask(0077);
        f = std::fopen(tmp.c_str(), "wb");
        ::umask(old);
    }
    if (!f) throw TlsError(tmp.string() + ": cannot create");
    bool ok = std::fwrite(content.data(), 1, content.size(), f) == content.size();
    ok = (std::fflush(f) == 0) && ok;
    ok = (::fsync(::fileno(f)) == 0) && ok;
    ok = (std::fclose(f) == 0) && ok;
    if (!ok || ::chmod(tmp.c_str(), mode) != 0) {
        std::filesystem::remove(tmp);
        throw TlsError(path.string() + ": write failed");
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) {
        std::filesystem::remove(tmp);
        throw TlsError(path.string() + ": " + ec.message());
    }
}

void check_key_permissions(const std::filesystem::path& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) throw TlsError(path.string() + ": cannot stat key file");
    if ((st.st_mode & 077) != 0) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        throw TlsError(path.string() + ": private key is readable by group or others (mode " + mode +
                       "); fix with: chmod 600 " + path.string());
    }
}

std::string check_ca_dir_chain(const std::filesystem::path& dir) {
    namespace fs = std::filesystem;
    if (!fs::exists(dir / "issuing.pem")) return "";
    X509Ptr root = read_cert_file(dir / "root.pem");
    auto chain = read_certs_file(dir / "issuing.pem");
    std::vector<X509*> inter;
    for (size_t i = 1; i < chain.size(); ++i) inter.push_back(chain[i].get());
    return verify_chain(chain.front().get(), inter, {root.get()});
}

CaMaterial load_ca_dir(const std::filesystem::path& dir) {
    namespace fs = std::filesystem;
    if (!fs::is_directory(dir))
        throw TlsError(dir.string() + ": CA directory not found; create one with: vigil-ca init --dir " + dir.string());
    CaMaterial ca;
    ca.root = read_cert_file(dir / "root.pem");
    fs::path key_path;
    if (fs::exists(dir / "issuing.pem")) {
        auto issuing = read_certs_file(dir / "issuing.pem");
        ca.issuer = x509_ref(issuing.front().get());
        ca.chain = std::move(issuing);  // issuing CA + any intermediates
        key_path = dir / "issuing.key";
    } else {
        ca.issuer = x509_ref(ca.root.get());
        key_path = dir / "root.key";
    }
    if (!fs::exists(key_path)) throw TlsError(key_path.string() + ": key file missing");
    check_key_permissions(key_path);
    ca.issuer_key = read_key_file(key_path);
    if (X509_check_private_key(ca.issuer.get(), ca.issuer_key.get()) != 1) {
        ERR_clear_error();
        throw TlsError(key_path.string() + ": key does not match its certificate");
    }
    if (!is_ca(ca.issuer.get())) throw TlsError("issuing certificate is not a CA (basicConstraints CA:TRUE missing)");
    std::time_t now = std::time(nullptr);
    if (not_after(ca.issuer.get()) <= now) throw TlsError("issuing CA certificate has expired; rotate it with vigil-ca");
    if (not_after(ca.root.get()) <= now) throw TlsError("root CA certificate has expired");
    // Clients trust root.pem: an issuing CA that does not chain to it would mint certificates
    // no client accepts (and vigil-ca kit would deploy the wrong root).
    if (std::string err = check_ca_dir_chain(dir); !err.empty())
        throw TlsError((dir / "issuing.pem").string() + ": the issuing CA does not verify up to " +
                       (dir / "root.pem").string() + ": " + err +
                       " (install the issuing CA with vigil-ca install-issuing --chain ROOT-AND-INTERMEDIATES)");
    return ca;
}

std::string fingerprint(X509* cert, const EVP_MD* md) {
    unsigned char buf[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    X509_digest(cert, md, buf, &len);
    return core::hex_upper(buf, len, ':');
}

std::string subject_text(X509* cert) { return name_text(X509_get_subject_name(cert)); }
std::string issuer_text(X509* cert) { return name_text(X509_get_issuer_name(cert)); }
std::time_t not_before(X509* cert) { return asn1_to_time(X509_get0_notBefore(cert)); }
std::time_t not_after(X509* cert) { return asn1_to_time(X509_get0_notAfter(cert)); }
bool is_ca(X509* cert) { return X509_check_ca(cert) >= 1; }

}  // namespace vigil::tls

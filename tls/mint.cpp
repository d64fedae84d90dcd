// Leaf certificate minting per the profile in DESIGN.md: SAN only, CA:FALSE, serverAuth, AKI, short life.
#include "tls/mint.hpp"

#include <algorithm>
#include <cctype>

#include <arpa/inet.h>

namespace vigil::tls {
namespace {

bool valid_dns_name(std::string_view h) {
    if (h.empty() || h.size() > 253) return false;
    size_t label = 0;
    for (size_t i = 0; i < h.size(); ++i) {
        char c = h[i];
        if (c == '.') {
            if (label == 0) return false;
            label = 0;
            continue;
        }
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) return false;
        if (++label > 63) return false;
    }
    return label > 0;
}

void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    X509ExtPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
    if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) throw TlsError("cannot add leaf extension");
}

}  // namespace

std::string canonical_ip(std::string_view text) {
    std::string s(text);
    unsigned char bin[16];
    char out[INET6_ADDRSTRLEN];
    if (inet_pton(AF_INET, s.c_str(), bin) == 1) return inet_ntop(AF_INET, bin, out, sizeof out);
    if (inet_pton(AF_INET6, s.c_str(), bin) == 1) return inet_ntop(AF_INET6, bin, out, sizeof out);
    return "";
}

std::string normalize_host(std::string_view host) {
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    std::string h(host);
    std::transform(h.begin(), h.end(), h.begin(), [](unsigned char c) { return std::tolower(c); });
    if (auto ip = canonical_ip(h); !ip.empty()) return ip;
    if (!h.empty() && h.back() == '.') h.pop_back();
    return valid_dns_name(h) ? h : std::string();
}

LeafMinter::LeafMinter(std::shared_ptr<const CaMaterial> ca)
    : ca_(std::move(ca)), leaf_key_(generate_key(KeyType::ec_p256)) {}

std::shared_ptr<const MintedCert> LeafMinter::mint(const std::string& host) const {
    X509* issuer = ca_->issuer.get();
    X509Ptr cert(X509_new());
    if (!cert) throw TlsError("X509_new");
    X509_set_version(cert.get(), 2);
    set_random_serial(cert.get());
    X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer));

    const bool is_ip = !canonical_ip(host).empty();
    // CN only when it fits (64 chars); clients use the SAN anyway.
    if (host.size() <= 64) {
        X509_NAME_add_entry_by_txt(X509_get_subject_name(cert.get()), "CN", MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(host.c_str()), -1, -1, 0);
    }
    std::time_t now = std::time(nullptr);
    std::time_t end = std::min<std::time_t>(now + kMaxLifetimeSeconds, not_after(issuer));
    X509_time_adj_ex(X509_getm_notBefore(cert.get()), 0, -kBackdateSeconds, &now);
    X509_time_adj_ex(X509_getm_notAfter(cert.get()), 0, 0, &end);
    X509_set_pubkey(cert.get(), leaf_key_.get());

    std::string san = (is_ip ? "IP:" : "DNS:") + host;
    add_ext(cert.get(), issuer, NID_subject_alt_name, san.c_str());
    add_ext(cert.get(), issuer, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(cert.get(), issuer, NID_key_usage, "critical,digitalSignature");
    add_ext(cert.get(), issuer, NID_ext_key_usage, "serverAuth");
    add_ext(cert.get(), issuer, NID_authority_key_identifier, "keyid:always");

    EVP_PKEY* ca_key = ca_->issuer_key.get();
    const EVP_MD* md = (EVP_PKEY_get_base_id(ca_key) == EVP_PKEY_EC && EVP_PKEY_get_bits(ca_key) > 256)
                           ? EVP_sha384() : EVP_sha256();
    if (X509_sign(cert.get(), ca_key, md) <= 0) throw TlsError("cannot sign leaf: " + last_openssl_error());

    auto out = std::make_shared<MintedCert>();
    // DER size plus the parsed X509 object (about 2 KiB, measured with tests/soak/soak.py).
    out->bytes = static_cast<size_t>(i2d_X509(cert.get(), nullptr)) + 2048;
    out->expires = end;
    out->leaf = std::move(cert);
    return out;
}

}  // namespace vigil::tls

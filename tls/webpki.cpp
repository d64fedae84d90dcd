// webpki-style chain checks after OpenSSL's verification.
#include "tls/webpki.hpp"

#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/x509v3.h>
#include <arpa/inet.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <vector>

#include "tls/ca.hpp"
#include "tls/mint.hpp"

namespace vigil::tls {
namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    return out;
}

std::string asn1_text(const ASN1_STRING* s) {
    return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), static_cast<size_t>(ASN1_STRING_length(s)));
}

ChainProblem problem(std::string code, std::string reason) { return {std::move(code), std::move(reason)}; }

// The key and signature rules, for every certificate but the trust anchor.
// The certificate's key: RSA of at least 2048 bits in whole bytes, EC on P-256/384/521, EdDSA.
std::optional<ChainProblem> check_key(X509* cert, const char* which) {
    EVP_PKEY* key = X509_get0_pubkey(cert);
    if (!key) return problem("malformed", std::string("the ") + which + " has no usable public key");
    const std::string w = which;
    if (EVP_PKEY_is_a(key, "RSA")) {
        const int bits = EVP_PKEY_get_bits(key);
        if (bits < 2048) return problem("weak_crypto", "the " + w + " has a " + std::to_string(bits) + "-bit RSA key (at least 2048)");
        if (bits % 8) return problem("malformed", "the " + w + " has an RSA key of " + std::to_string(bits) + " bits, not a whole number of bytes");
    } else if (EVP_PKEY_is_a(key, "EC")) {
        char curve[64] = "";
        size_t len = 0;
        EVP_PKEY_get_utf8_string_param(key, "group", curve, sizeof curve, &len);
        const std::string c = curve;
        if (c != "prime256v1" && c != "P-256" && c != "secp384r1" && c != "P-384" && c != "secp521r1" && c != "P-521")
            return problem("weak_crypto", "the " + w + " uses the elliptic curve " + (c.empty() ? "(unnamed)" : c) +
                                              " (P-256, P-384 or P-521 only)");
    } else if (EVP_PKEY_is_a(key, "DSA")) {
        return problem("weak_crypto", "the " + w + " has a DSA key");
    } else if (!EVP_PKEY_is_a(key, "ED25519") && !EVP_PKEY_is_a(key, "ED448")) {
        return problem("weak_crypto", "the " + w + " has a key of an unsupported type");
    }
    return std::nullopt;
}

std::optional<ChainProblem> check_crypto(X509* cert, const char* which) {
    if (auto p = check_key(cert, which)) return p;
    const std::string w = which;
    int md = NID_undef, pk = NID_undef;
    X509_get_signature_info(cert, &md, &pk, nullptr, nullptr);
    if (md == NID_sha1 || md == NID_md5 || md == NID_md4 || md == NID_md2 || md == NID_md5_sha1)
        return problem("weak_crypto", "the " + w + " is signed with " + OBJ_nid2sn(md));
    // Serial numbers: positive, at most 20 bytes (RFC 5280 4.1.2.2).
    const ASN1_INTEGER* serial = X509_get0_serialNumber(cert);
    if (ASN1_STRING_type(serial) == V_ASN1_NEG_INTEGER || ASN1_STRING_length(serial) == 0 ||
        (ASN1_STRING_length(serial) == 1 && ASN1_STRING_get0_data(serial)[0] == 0))
        return problem("malformed", "the " + w + " has a serial number that is not positive");
    if (ASN1_STRING_length(serial) > 20) return problem("malformed", "the " + w + " has a serial number longer than 20 bytes");
    return std::nullopt;
}

// Extensions whose structure RFC 5280 fixes and browser-grade verifiers enforce: name
// constraints only in CA certificates, critical, with at least one subtree; policy
// constraints critical; an Authority Information Access that parses.
std::optional<ChainProblem> check_structure(X509* cert, bool is_ca, const std::string& which) {
    if (const int at = X509_get_ext_by_NID(cert, NID_name_constraints, -1); at >= 0) {
        if (!is_ca) return problem("malformed", "the " + which + " carries name constraints, which only a CA may");
        if (!X509_EXTENSION_get_critical(X509_get_ext(cert, at)))
            return problem("malformed", "the " + which + "'s name constraints are not marked critical");
        auto* nc = static_cast<NAME_CONSTRAINTS*>(X509_get_ext_d2i(cert, NID_name_constraints, nullptr, nullptr));
        const bool empty = !nc || (sk_GENERAL_SUBTREE_num(nc->permittedSubtrees) <= 0 &&
                                   sk_GENERAL_SUBTREE_num(nc->excludedSubtrees) <= 0);
        NAME_CONSTRAINTS_free(nc);
        if (empty) return problem("malformed", "the " + which + "'s name constraints name no permitted or excluded names");
    }
    if (const int at = X509_get_ext_by_NID(cert, NID_policy_constraints, -1);
        at >= 0 && !X509_EXTENSION_get_critical(X509_get_ext(cert, at)))
        return problem("malformed", "the " + which + "'s policy constraints are not marked critical");
    if (X509_get_ext_by_NID(cert, NID_info_access, -1) >= 0) {
        auto* aia = static_cast<AUTHORITY_INFO_ACCESS*>(X509_get_ext_d2i(cert, NID_info_access, nullptr, nullptr));
        if (!aia) return problem("malformed", "the " + which + " has an Authority Information Access extension that cannot be read");
        AUTHORITY_INFO_ACCESS_free(aia);
    }
    return std::nullopt;
}

// The trust anchor itself, as webpki checks it: its key, an Authority Key Identifier (when
// present) with a key identifier, and an extended key usage (when present) that allows TLS
// servers.
std::optional<ChainProblem> check_anchor(X509* anchor) {
    if (auto p = check_key(anchor, "trust anchor (root certificate)")) return p;
    if (X509_get_ext_by_NID(anchor, NID_authority_key_identifier, -1) >= 0) {
        auto* akid = static_cast<AUTHORITY_KEYID*>(X509_get_ext_d2i(anchor, NID_authority_key_identifier, nullptr, nullptr));
        const bool has_keyid = akid && akid->keyid;
        AUTHORITY_KEYID_free(akid);
        if (!has_keyid)
            return problem("malformed", "the trust anchor's authority key identifier has no key identifier");
    }
    if ((X509_get_extension_flags(anchor) & EXFLAG_XKUSAGE) &&
        !(X509_get_extended_key_usage(anchor) & (XKU_SSL_SERVER | XKU_ANYEKU)))
        return problem("untrusted", "the trust anchor (root certificate) is restricted to uses other than TLS servers");
    return std::nullopt;
}

}  // namespace

std::shared_ptr<const PublicSuffixList> PublicSuffixList::load(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw TlsError(path + ": cannot read the public suffix list (install the publicsuffix package)");
    std::ostringstream ss;
    ss << in.rdbuf();
    auto list = parse(ss.str());
    if (list->size() < 100) throw TlsError(path + ": not a public suffix list");
    return list;
}

std::shared_ptr<const PublicSuffixList> PublicSuffixList::parse(std::string_view text) {
    auto list = std::make_shared<PublicSuffixList>();
    size_t pos = 0;
    while (pos < text.size()) {
        size_t end = text.find('\n', pos);
        if (end == std::string_view::npos) end = text.size();
        std::string_view line = text.substr(pos, end - pos);
        pos = end + 1;
        // A rule is the line's first word; comments start with "//".
        line = line.substr(0, line.find_first_of(" \t\r"));
        if (line.empty() || line.substr(0, 2) == "//") continue;
        if (line[0] == '!') list->exceptions_.insert(lower(line.substr(1)));
        else if (line.substr(0, 2) == "*.") list->wildcards_.insert(lower(line.substr(2)));
        else list->rules_.insert(lower(line));
    }
    return list;
}

bool PublicSuffixList::is_public_suffix(std::string_view name) const {
    const std::string n = lower(name);
    if (n.empty()) return true;
    if (exceptions_.count(n)) return false;
    if (rules_.count(n)) return true;
    const size_t dot = n.find('.');
    if (dot == std::string::npos) return true;  // the implicit "*" rule: every top-level label
    return wildcards_.count(n.substr(dot + 1)) > 0;
}

bool valid_dns_name(std::string_view name, bool allow_wildcard) {
    if (name.empty() || name.size() > 253) return false;
    if (allow_wildcard && name.substr(0, 2) == "*.") {
        name.remove_prefix(2);
        if (name.find('.') == std::string_view::npos) return false;  // "*.com" has one label after it
    }
    size_t start = 0;
    while (true) {
        const size_t dot = name.find('.', start);
        const std::string_view label = name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
        for (char c : label)
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-')) return false;
        if (dot == std::string_view::npos) return true;
        start = dot + 1;
    }
}

std::optional<ChainProblem> check_webpki(STACK_OF(X509) * chain, const PublicSuffixList& psl, Strictness strictness) {
    const bool strict = strictness == Strictness::strict;
    const int n = sk_X509_num(chain);
    if (n < 1) return problem("malformed", "the origin sent no certificate");
    X509* leaf = sk_X509_value(chain, 0);

    // The leaf: an end-entity certificate for TLS servers.
    if ((X509_get_extension_flags(leaf) & EXFLAG_CA) && n > 1) return problem("malformed", "the origin's certificate is a CA certificate, not a server's");
    const uint32_t xku = X509_get_extended_key_usage(leaf);
    // No extendedKeyUsage means any use (RFC 5280 4.2.1.12); Chromium accepts it.
    const bool has_eku = X509_get_extension_flags(leaf) & EXFLAG_XKUSAGE;
    if (!has_eku && strict)
        return problem("malformed", "the origin's certificate has no extended key usage (serverAuth is required)");
    if (has_eku && !(xku & XKU_SSL_SERVER))
        return problem("malformed", "the origin's certificate is not for TLS servers (no serverAuth usage)");
    if (has_eku && (xku & XKU_ANYEKU))
        return problem("malformed", "the origin's certificate allows any extended key usage beside serverAuth");
    if (const int at = X509_get_ext_by_NID(leaf, NID_ext_key_usage, -1);
        at >= 0 && X509_EXTENSION_get_critical(X509_get_ext(leaf, at)))
        return problem("malformed", "the origin's certificate marks its extended key usage critical");

    // Names: a subjectAltName with DNS names or IP addresses, each well formed.
    GeneralNamesPtr owned(static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(leaf, NID_subject_alt_name, nullptr, nullptr)));
    GENERAL_NAMES* names = owned.get();
    std::vector<std::string> san, san_exact;  // lower case for matching; as written, for strict's CN check
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names); ++i) {
        const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names, i);
        if (gn->type == GEN_DNS) {
            const std::string dns = asn1_text(gn->d.dNSName);
            if (!valid_dns_name(dns, true)) return problem("malformed", "the origin's certificate names an invalid host \"" + dns + "\"");
            if (dns.rfind("*.", 0) == 0 && psl.is_public_suffix(dns.substr(2)))
                return problem("malformed", "the origin's certificate has a wildcard \"" + dns + "\" over a public suffix");
            san.push_back(lower(dns));
            san_exact.push_back(dns);
        } else if (gn->type == GEN_IPADD) {
            // As text in canonical form (mint.hpp), so a CN "::1" or "0:0::1" compares equal.
            const int len = ASN1_STRING_length(gn->d.iPAddress);
            char text[INET6_ADDRSTRLEN] = "";
            if ((len != 4 && len != 16) ||
                !inet_ntop(len == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(gn->d.iPAddress), text, sizeof text))
                return problem("malformed", "the origin's certificate has a malformed IP address name");
            san.push_back(text);
            san_exact.push_back(text);
        }
    }
    if (san.empty()) return problem("malformed", "the origin's certificate has no subjectAltName with a DNS name or IP address");
    // Browsers ignore the subject CN once there is a subjectAltName; strict: it must be a
    // byte-exact copy of one of them (the BR say "copied"), an IP address in canonical form.
    X509_NAME* subject = X509_get_subject_name(leaf);
    for (int i = -1; strict && (i = X509_NAME_get_index_by_NID(subject, NID_commonName, i)) >= 0;) {
        const std::string cn = asn1_text(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i)));
        const std::string ip = canonical_ip(cn);
        if (std::find(san_exact.begin(), san_exact.end(), ip.empty() ? cn : ip) == san_exact.end()) {
            const bool case_only = std::find(san.begin(), san.end(), lower(cn)) != san.end();
            return problem("malformed", "the origin's certificate names \"" + cn + "\" in its subject but not in its "
                                        "subjectAltName" + (case_only ? " (it differs in letter case)" : ""));
        }
    }

    // Every certificate below the trust anchor: keys, signatures, serials; every one: the
    // structure of its extensions; the anchor: its own key and identifiers.
    for (int i = 0; i < std::max(n - 1, 1); ++i)
        if (auto p = check_crypto(sk_X509_value(chain, i), i == 0 ? "origin's certificate" : "intermediate certificate")) return p;
    for (int i = 0; i < n; ++i) {
        X509* c = sk_X509_value(chain, i);
        const std::string which = i == 0 ? "origin's certificate" : i == n - 1 ? "trust anchor" : "intermediate certificate";
        if (auto p = check_structure(c, i > 0, which)) return p;
    }
    if (n > 1)
        if (auto p = check_anchor(sk_X509_value(chain, n - 1))) return p;
    return std::nullopt;
}

}  // namespace vigil::tls

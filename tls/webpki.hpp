// Browser-grade checks of an origin's verified chain, beyond what OpenSSL's verifier does:
// the rules of the CA/Browser Forum baseline and of webpki (the verifier behind rustls),
// run on the chain OpenSSL built after it accepted it. Any failure rejects the origin.
#pragma once

#include <openssl/x509.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>

namespace vigil::tls {

// The public suffix list (Debian's `publicsuffix` package): names under which nobody may
// hold a wildcard certificate ("*.co.uk", "*.github.io").
class PublicSuffixList {
public:
    static constexpr const char* kDefaultPath = "/usr/share/publicsuffix/public_suffix_list.dat";
    // Throws TlsError when the file cannot be read or holds no rules.
    static std::shared_ptr<const PublicSuffixList> load(const std::string& path);
    static std::shared_ptr<const PublicSuffixList> parse(std::string_view text);
    // Whether `name` (lower case, no trailing dot) is itself a public suffix.
    bool is_public_suffix(std::string_view name) const;
    size_t size() const { return rules_.size() + wildcards_.size() + exceptions_.size(); }

private:
    std::unordered_set<std::string> rules_, wildcards_, exceptions_;  // "co.uk"; "ck" for *.ck; "www.ck"
};

// The verdict on a chain: empty when it passes. `code` is the error class used by policy,
// the block page, the audit record and the counters; `reason` is plain words.
struct ChainProblem {
    std::string code;    // malformed, weak_crypto, hostname_mismatch
    std::string reason;
};

// tls.strictness. `browser` (the default) accepts what Chromium accepts among the choices RFC
// 5280 leaves open: a leaf without extendedKeyUsage, a subject CN that is not among the
// subjectAltNames (browsers ignore the CN once there is a SAN). `strict` refuses both.
enum class Strictness { browser, strict };

// `chain` as OpenSSL verified it: the leaf first, the trust anchor last.
std::optional<ChainProblem> check_webpki(STACK_OF(X509) * chain, const PublicSuffixList& psl,
                                         Strictness strictness = Strictness::browser);

// Path building beyond OpenSSL's first path (paths.cpp): when that path fails for a reason
// another issuer could avoid (`path_error`: name constraints, a path length, an expired or
// unusable intermediate), verify again without one of the path's intermediates the origin
// sent, so that another certificate with the same subject (a cross-signed copy) is chosen; at
// most 4 tries. The path found must pass check_webpki too. Browsers build paths the same way.
bool path_error(int x509_error);
bool verifies_along_another_path(X509_STORE_CTX* failed, const PublicSuffixList& psl, Strictness strictness);

// DNS name syntax as certificates may carry it: labels of [a-z0-9-] (no underscores), no
// empty label, at most 63 bytes a label and 253 in all; a wildcard only as the whole
// left-most label of a name with at least two more labels.
bool valid_dns_name(std::string_view name, bool allow_wildcard);

}  // namespace vigil::tls

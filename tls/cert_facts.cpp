// A refused certificate, described for the person who sees the page.
#include "tls/cert_facts.hpp"

#include <ctime>

#include <openssl/x509v3.h>

namespace vigil::tls {

namespace {

std::string day(const ASN1_TIME* t) {
    std::tm tm{};
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return "?";
    char buf[16];
    std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
    return buf;
}

}  // namespace

// What a person can check on a refused certificate: who is at fault, the names it is for, and
// when it is valid (not the verifier's words: those go to the log).
std::vector<std::pair<std::string, std::string>> certificate_facts(X509* cert) {
    std::vector<std::pair<std::string, std::string>> facts{
        {"At fault", "the site: its certificate, not your network or your computer"}};
    if (!cert) return facts;
    std::string names;
    int listed = 0, more = 0;
    if (auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr))) {
        for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
            const GENERAL_NAME* n = sk_GENERAL_NAME_value(sans, i);
            if (n->type != GEN_DNS) continue;
            if (listed == 6) {
                ++more;
                continue;
            }
            const auto* s = n->d.dNSName;
            names += (names.empty() ? "" : ", ") + std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                                                static_cast<size_t>(ASN1_STRING_length(s)));
            ++listed;
        }
        GENERAL_NAMES_free(sans);
    }
    if (more) names += " and " + std::to_string(more) + " more";
    facts.emplace_back("Certificate for", names.empty() ? "(no host names)" : names);
    facts.emplace_back("Valid", day(X509_get0_notBefore(cert)) + " to " + day(X509_get0_notAfter(cert)));
    return facts;
}

}  // namespace vigil::tls

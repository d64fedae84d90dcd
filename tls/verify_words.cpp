// Plain words for OpenSSL's verification errors: the page says these; OpenSSL's own text goes
// to the log only.
#include "tls/contexts.hpp"

#include <openssl/x509_vfy.h>

namespace vigil::tls {

CertVerdict describe_verify_error(long e) {
    switch (e) {
        case X509_V_ERR_CERT_HAS_EXPIRED:
            return {"expired", "the origin's certificate has expired"};
        case X509_V_ERR_CERT_NOT_YET_VALID:
            return {"not_yet_valid", "the origin's certificate is not valid yet"};
        case X509_V_ERR_HOSTNAME_MISMATCH:
        case X509_V_ERR_IP_ADDRESS_MISMATCH:
            return {"hostname_mismatch", "the origin's certificate is for a different host name"};
        case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
            return {"self_signed", "the origin's certificate is self-signed"};
        case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
            return {"untrusted", "the origin's certificate chains to a root that is not trusted"};
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
        case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
            return {"untrusted", "the origin's certificate was issued by an unknown or untrusted authority"};
        case X509_V_ERR_CERT_REVOKED:
            return {"revoked", "the origin's certificate has been revoked"};
        case X509_V_ERR_CA_MD_TOO_WEAK:
        case X509_V_ERR_CA_KEY_TOO_SMALL:
        case X509_V_ERR_EE_KEY_TOO_SMALL:
            return {"weak_crypto", "the origin's certificate uses weak cryptography"};
        case X509_V_ERR_INVALID_PURPOSE:
            return {"malformed", "the origin's certificate is not valid for a web server"};
        case X509_V_ERR_PERMITTED_VIOLATION:
        case X509_V_ERR_EXCLUDED_VIOLATION:
        case X509_V_ERR_SUBTREE_MINMAX:
        case X509_V_ERR_UNSUPPORTED_NAME_SYNTAX:
            return {"untrusted", "the authority that issued the origin's certificate may not issue it for this name "
                                 "(name constraints)"};
        case X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION:
            return {"malformed", "the origin's certificate has a critical extension that is not understood"};
        case X509_V_ERR_CERT_SIGNATURE_FAILURE:
        case X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE:
        case X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY:
            return {"malformed", "a certificate in the origin's chain has a signature that does not verify"};
        case X509_V_ERR_CERT_CHAIN_TOO_LONG:
            return {"malformed", "the origin's certificate chain is too long (certificate chain too long: more "
                                 "certificates than tls.max_chain_depth allows)"};
        case X509_V_ERR_PATH_LENGTH_EXCEEDED:
            return {"malformed", "an authority in the origin's chain issued below the depth it may (path length "
                                 "constraint exceeded)"};
        case X509_V_ERR_INVALID_CA:
        case X509_V_ERR_KEYUSAGE_NO_CERTSIGN:
        case X509_V_ERR_CA_CERT_MISSING_KEY_USAGE:
            return {"malformed", "a certificate in the origin's chain signs others without being a certificate "
                                 "authority allowed to"};
        case X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD:
        case X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD:
            return {"malformed", "a certificate in the origin's chain has unreadable validity dates"};
        case X509_V_ERR_AKID_SKID_MISMATCH:
        case X509_V_ERR_AKID_ISSUER_SERIAL_MISMATCH:
        case X509_V_ERR_SUBJECT_ISSUER_MISMATCH:
            return {"malformed", "a certificate in the origin's chain does not name its issuer consistently"};
        case X509_V_ERR_INVALID_EXTENSION:
        case X509_V_ERR_INVALID_POLICY_EXTENSION:
        case X509_V_ERR_NO_EXPLICIT_POLICY:
        case X509_V_ERR_EXTENSIONS_REQUIRE_VERSION_3:
            return {"malformed", "a certificate in the origin's chain has an invalid or inconsistent extension"};
        case X509_V_ERR_EC_KEY_EXPLICIT_PARAMS:
            return {"weak_crypto", "a certificate in the origin's chain uses an elliptic curve given by explicit "
                                   "parameters instead of a named curve"};
        case X509_V_ERR_CERT_UNTRUSTED:
        case X509_V_ERR_CERT_REJECTED:
            return {"untrusted", "the origin's certificate authority is marked as not trusted for web servers"};
        case X509_V_ERR_UNSPECIFIED:  // OpenSSL's name-constraint work limit, among others
            return {"invalid", "the origin's certificate chain could not be checked: it carries more names or name "
                               "constraints than the verifier checks"};
        default:
            // OpenSSL's own words go to the log (certificate_refused), not the page.
            return {"invalid", "the origin's certificate chain could not be verified (a problem the gateway has no "
                               "plainer words for; the gateway's log names it)"};
    }
}

}  // namespace vigil::tls

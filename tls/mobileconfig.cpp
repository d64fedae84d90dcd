// .mobileconfig profiles for the deployment kit and the onboarding page.
#include "tls/mobileconfig.hpp"
#include "core/encoding.hpp"

#include <openssl/evp.h>

#include "tls/ca.hpp"

namespace vigil::tls {
namespace {

using core::base64;

// A UUID (version 4 layout) from bytes of the certificate's SHA-256 and a salt.
std::string stable_uuid(X509* cert, const std::string& salt) {
    std::string fp = fingerprint(cert, EVP_sha256()) + salt;
    unsigned char md[32];
    unsigned int len = 0;
    EVP_Digest(fp.data(), fp.size(), md, &len, EVP_sha256(), nullptr);
    md[6] = static_cast<unsigned char>((md[6] & 0x0f) | 0x40);
    md[8] = static_cast<unsigned char>((md[8] & 0x3f) | 0x80);
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (int i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
        out += hex[md[i] >> 4];
        out += hex[md[i] & 15];
    }
    return out;
}

std::string xml_escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (c == '&') out += "&amp;";
        else if (c == '<') out += "&lt;";
        else if (c == '>') out += "&gt;";
        else out += c;
    }
    return out;
}

std::string cn_of(X509* cert) { return common_name(cert, "Vigil Root CA"); }

}  // namespace

std::string common_name(X509* cert, const std::string& fallback) {
    char buf[256] = "";
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, sizeof buf);
    return buf[0] ? buf : fallback;
}

std::string mobileconfig(X509* root) {
    const std::string name = xml_escape(cn_of(root));
    return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
           "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
           "<plist version=\"1.0\">\n<dict>\n"
           "  <key>PayloadContent</key>\n  <array>\n    <dict>\n"
           "      <key>PayloadCertificateFileName</key>\n      <string>vigil-root.cer</string>\n"
           "      <key>PayloadContent</key>\n      <data>" + base64(cert_to_der(root)) + "</data>\n"
           "      <key>PayloadDescription</key>\n      <string>Adds the " + name + " root certificate</string>\n"
           "      <key>PayloadDisplayName</key>\n      <string>" + name + "</string>\n"
           "      <key>PayloadIdentifier</key>\n      <string>invalid.vigil.root." + stable_uuid(root, "payload") + "</string>\n"
           "      <key>PayloadType</key>\n      <string>com.apple.security.root</string>\n"
           "      <key>PayloadUUID</key>\n      <string>" + stable_uuid(root, "payload") + "</string>\n"
           "      <key>PayloadVersion</key>\n      <integer>1</integer>\n"
           "    </dict>\n  </array>\n"
           "  <key>PayloadDisplayName</key>\n  <string>" + name + " (web gateway)</string>\n"
           "  <key>PayloadIdentifier</key>\n  <string>invalid.vigil.profile." + stable_uuid(root, "profile") + "</string>\n"
           "  <key>PayloadRemovalDisallowed</key>\n  <false/>\n"
           "  <key>PayloadType</key>\n  <string>Configuration</string>\n"
           "  <key>PayloadUUID</key>\n  <string>" + stable_uuid(root, "profile") + "</string>\n"
           "  <key>PayloadVersion</key>\n  <integer>1</integer>\n"
           "</dict>\n</plist>\n";
}

}  // namespace vigil::tls

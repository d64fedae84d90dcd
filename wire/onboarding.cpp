// Onboarding page and certificate downloads. Built from the root certificate alone: there is
// no code path here that could reach a private key.
#include "wire/onboarding.hpp"

#include "wire/pac.hpp"
#include "wire/pages.hpp"
#include "tls/ca.hpp"
#include "tls/mobileconfig.hpp"

namespace vigil::wire {

OnboardingResponse onboarding_response(X509* root, const std::string& raw_path, const config::Config& cfg,
                                       std::string_view host, uint16_t proxy_port) {
    if (is_pac_path(raw_path.substr(0, raw_path.find('?'))))
        return {200, kPacContentType, pac_file(cfg.pac, pac_fallback_proxy(host, cfg.listen, proxy_port)), ""};
    return onboarding_response(root, raw_path);
}

OnboardingResponse onboarding_response(X509* root, const std::string& raw_path) {
    std::string path = raw_path.substr(0, raw_path.find('?'));
    if (path == "/vigil-root.pem") return {200, "application/x-pem-file", tls::cert_to_pem(root), "vigil-root.pem"};
    if (path == "/vigil-root.cer") return {200, "application/pkix-cert", tls::cert_to_der(root), "vigil-root.cer"};
    if (path == "/vigil-root.mobileconfig")
        return {200, "application/x-apple-aspen-config", tls::mobileconfig(root), "vigil-root.mobileconfig"};
    if (path != "/") return {404, "text/plain; charset=utf-8", "not found\n", ""};
    const std::string name = html_escape(tls::common_name(root, "Vigil Root CA"));
    const std::string sha256 = tls::fingerprint(root, EVP_sha256());
    std::string html =
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Trust " + name +
        "</title><style>body{font-family:system-ui,sans-serif;max-width:44rem;margin:3rem auto;padding:0 1rem;"
        "color:#222}code{word-break:break-all;background:#f3f3f3;padding:.1rem .3rem}a.dl{display:inline-block;"
        "margin:.25rem .5rem .25rem 0;padding:.5rem .9rem;border:1px solid #888;border-radius:.4rem;"
        "text-decoration:none;color:#222}li{margin:.4rem 0}</style></head><body>\n"
        "<h1>Set up this device for the company web gateway</h1>\n"
        "<p>Web traffic is inspected by the company's gateway. To use HTTPS sites without "
        "warnings, this device must trust <strong>" + name + "</strong>.</p>\n"
        "<p>Before installing, check that the certificate's SHA-256 fingerprint is exactly:<br>"
        "<code id=\"sha256\">" + sha256 + "</code></p>\n"
        "<p><a class=\"dl\" href=\"/vigil-root.pem\">Certificate (PEM)</a>"
        "<a class=\"dl\" href=\"/vigil-root.cer\">Certificate for Windows and Android (.cer)</a>"
        "<a class=\"dl\" href=\"/vigil-root.mobileconfig\">Profile for macOS and iOS</a></p>\n"
        "<h2>Steps</h2><ul>\n"
        "<li><b>Windows</b>: open the .cer file → Install Certificate → Local Machine → Trusted Root "
        "Certification Authorities.</li>\n"
        "<li><b>macOS</b>: open the profile, then approve it in System Settings → Privacy &amp; Security → "
        "Profiles.</li>\n"
        "<li><b>iOS</b>: install the profile, then Settings → General → About → Certificate Trust Settings → "
        "turn on full trust.</li>\n"
        "<li><b>Android</b>: Settings → Security → Encryption &amp; credentials → Install a certificate → CA "
        "certificate (many apps still ignore user certificates).</li>\n"
        "<li><b>Linux</b>: copy the PEM to <code>/usr/local/share/ca-certificates/vigil-root.crt</code> and run "
        "<code>sudo update-ca-certificates</code>; Firefox and Chrome may need their own import.</li>\n"
        "</ul>\n<p style=\"color:#888;font-size:.8rem\">Vigil secure web gateway — this page only ever serves "
        "certificates.</p>\n</body></html>\n";
    return {200, "text/html; charset=utf-8", html, ""};
}

}  // namespace vigil::wire

// Deployment kit files. Every install step names the file it uses and how to check it.
#include "ca-tools/kit.hpp"
#include "tls/mobileconfig.hpp"

#include <sys/stat.h>

#include <ctime>
#include <fstream>

#include <openssl/evp.h>

namespace vigil::catools {
namespace {

namespace fs = std::filesystem;
using namespace vigil::tls;

std::string cn_of(X509* cert) { return common_name(cert, "Vigil Root CA"); }

void put(const fs::path& path, const std::string& content, unsigned mode = 0644) {
    fs::create_directories(path.parent_path());
    write_file_atomic(path, content, mode);
}

std::string date(std::time_t t) {
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
    return buf;
}

}  // namespace

void write_kit(X509* root, const fs::path& out, const ProxySettings& proxy) {
    if (fs::exists(out)) throw TlsError(out.string() + " already exists; choose a new folder for the kit");
    fs::path tmp = out;
    tmp += ".tmp";
    fs::remove_all(tmp);
    const std::string sha256 = fingerprint(root, EVP_sha256()), sha1 = fingerprint(root, EVP_sha1());
    std::string thumb;
    for (char c : sha1)
        if (c != ':') thumb += c;
    const std::string name = cn_of(root);

    put(tmp / "vigil-root.pem", cert_to_pem(root));
    put(tmp / "vigil-root.cer", cert_to_der(root));
    put(tmp / "android" / "vigil-root.crt", cert_to_der(root));
    put(tmp / "windows" / "vigil-root.p12", certs_to_p12({root}, name));
    put(tmp / "windows" / "install-root.ps1",
        "# Installs the Vigil root into the machine's Trusted Root store (run as Administrator).\n"
        "$ErrorActionPreference = 'Stop'\n"
        "$cert = Import-Certificate -FilePath (Join-Path $PSScriptRoot '..\\vigil-root.cer') "
        "-CertStoreLocation Cert:\\LocalMachine\\Root\n"
        "if ($cert.Thumbprint -ne '" + thumb + "') { throw \"unexpected thumbprint $($cert.Thumbprint)\" }\n"
        "Write-Host \"Installed $($cert.Subject) ($($cert.Thumbprint))\"\n");
    put(tmp / "macos" / "vigil-root.mobileconfig", mobileconfig(root));
    put(tmp / "linux" / "install-debian.sh",
        "#!/bin/sh\n# Debian/Ubuntu: installs the Vigil root into the system trust store.\n"
        "# ROOT=/some/dir installs into a tree below that directory instead of /.\n"
        "set -eu\nhere=$(dirname \"$0\")\nR=${ROOT:-}\n"
        "install -D -m 0644 \"$here/../vigil-root.pem\" \"$R/usr/local/share/ca-certificates/vigil-root.crt\"\n"
        "if [ -n \"$R\" ]; then\n"
        "  mkdir -p \"$R/etc/ssl/certs\" \"$R/usr/share/ca-certificates\" \"$R/etc/ca-certificates/update.d\"\n"
        "  touch \"$R/etc/ca-certificates.conf\"\n"
        "  update-ca-certificates --fresh --localcertsdir \"$R/usr/local/share/ca-certificates\" "
        "--etccertsdir \"$R/etc/ssl/certs\" --certsdir \"$R/usr/share/ca-certificates\" "
        "--certsconf \"$R/etc/ca-certificates.conf\" --hooksdir \"$R/etc/ca-certificates/update.d\"\n"
        "else\n  update-ca-certificates\nfi\n",
        0755);
    put(tmp / "linux" / "install-rhel.sh",
        "#!/bin/sh\n# RHEL/Fedora: installs the Vigil root into the system trust store.\nset -eu\n"
        "install -D -m 0644 \"$(dirname \"$0\")/../vigil-root.pem\" /etc/pki/ca-trust/source/anchors/vigil-root.pem\n"
        "update-ca-trust extract\n",
        0755);
    put(tmp / "firefox" / "policies.json",
        "{\n  \"policies\": {\n    \"Certificates\": {\n      \"ImportEnterpriseRoots\": true,\n"
        "      \"Install\": [\"vigil-root.pem\"]\n    }\n  }\n}\n");
    put(tmp / "runtimes" / "env.sh",
        "# Runtimes that ignore the OS trust store. Source this after installing the root into the\n"
        "# system store (linux/install-*.sh), so the system bundle below already contains it.\n"
        "KIT=$(cd \"$(dirname \"${BASH_SOURCE:-$0}\")/..\" && pwd)\n"
        "BUNDLE=/etc/ssl/certs/ca-certificates.crt   # RHEL/Fedora: /etc/pki/tls/certs/ca-bundle.crt\n"
        "export NODE_EXTRA_CA_CERTS=\"$KIT/vigil-root.pem\"   # Node adds this to its own list\n"
        "export REQUESTS_CA_BUNDLE=\"$BUNDLE\"   # Python requests (replaces its list)\n"
        "export SSL_CERT_FILE=\"$BUNDLE\"        # OpenSSL-based tools, Python ssl, Ruby, Go\n"
        "export PIP_CERT=\"$BUNDLE\"\n"
        "export GIT_SSL_CAINFO=\"$BUNDLE\"\n"
        "export AWS_CA_BUNDLE=\"$BUNDLE\"\n"
        "export CURL_CA_BUNDLE=\"$BUNDLE\"\n");
    std::time_t nb = not_before(root), na = not_after(root);
    const std::string proxy_section = proxy.empty() ? "" : write_proxy_kit(tmp, proxy);
    put(tmp / "README.md",
        "# Trusting " + name + "\n\n"
        "This kit makes devices trust the certificate authority that Vigil, the company's web\n"
        "gateway, uses to inspect HTTPS. It contains certificates only, never a private key.\n\n"
        "**Check the fingerprint before deploying anything** — it must match what your PKI\n"
        "admin publishes (`vigil-ca show --dir …`):\n\n"
        "| | |\n|---|---|\n| Subject | " + subject_text(root) + " |\n"
        "| Valid | " + date(nb) + " to " + date(na) + " |\n"
        "| SHA-256 | `" + sha256 + "` |\n| SHA-1 (Windows thumbprint) | `" + thumb + "` |\n\n"
        "Files: `vigil-root.pem` (PEM), `vigil-root.cer` (DER), `windows/vigil-root.p12`\n"
        "(certificate-only PKCS#12, empty password), `android/vigil-root.crt` (DER),\n"
        "`macos/vigil-root.mobileconfig`.\n\n"
        "## Windows\n\n"
        "- One machine: run `windows\\install-root.ps1` as Administrator (uses `Import-Certificate`\n"
        "  into `Cert:\\LocalMachine\\Root` and checks the thumbprint), or\n"
        "  `certutil -addstore -f Root vigil-root.cer`.\n"
        "- Domain: Group Policy Management → edit a GPO linked to the computers' OU → Computer\n"
        "  Configuration → Policies → Windows Settings → Security Settings → Public Key Policies →\n"
        "  Trusted Root Certification Authorities → Import… → `vigil-root.cer`. Then `gpupdate /force`.\n"
        "- Check: `certutil -store Root " + thumb + "`.\n\n"
        "## macOS and iOS\n\n"
        "- MDM: upload `macos/vigil-root.mobileconfig` as a profile (it contains a root payload).\n"
        "- By hand (macOS): double-click the profile, approve it in System Settings → Privacy &\n"
        "  Security → Profiles; or `sudo security add-trusted-cert -d -r trustRoot -k\n"
        "  /Library/Keychains/System.keychain vigil-root.cer`.\n"
        "- iOS by hand: install the profile, then Settings → General → About → Certificate Trust\n"
        "  Settings → enable full trust for the root.\n\n"
        "## Linux\n\n"
        "- Debian/Ubuntu: `sudo sh linux/install-debian.sh` (copies to\n"
        "  `/usr/local/share/ca-certificates/` and runs `update-ca-certificates`).\n"
        "- RHEL/Fedora: `sudo sh linux/install-rhel.sh` (`/etc/pki/ca-trust/source/anchors/`,\n"
        "  `update-ca-trust extract`).\n"
        "- Chrome/Chromium on Linux keep their own NSS database per user:\n"
        "  `certutil -d sql:$HOME/.pki/nssdb -A -t \"C,,\" -n \"" + name + "\" -i vigil-root.pem`\n"
        "  (package `libnss3-tools`).\n\n"
        "## Firefox\n\n"
        "Copy `firefox/policies.json` to the `distribution/` folder of the Firefox installation\n"
        "(Linux: `/etc/firefox/policies/`) and `vigil-root.pem` to a folder Firefox searches for\n"
        "`Install` entries (Linux: `/usr/lib/mozilla/certificates/`; or use a full path). With\n"
        "`ImportEnterpriseRoots` Firefox also trusts roots from the Windows and macOS stores.\n\n"
        "## Java\n\n"
        "`keytool -importcert -noprompt -cacerts -storepass changeit -alias vigil-root -file vigil-root.pem`\n"
        "(per JDK; repeat after JDK updates, or point `-Djavax.net.ssl.trustStore` at a managed store).\n\n"
        "## Android\n\n"
        "Copy `android/vigil-root.crt` to the device; Settings → Security → Encryption &\n"
        "credentials → Install a certificate → CA certificate. Caveat: apps targeting Android 7+\n"
        "trust only system CAs unless their network security config trusts user CAs, so most apps\n"
        "will not trust this root; managed devices (Android Enterprise) can push it as a system-wide\n"
        "trusted CA by policy.\n\n"
        "## Runtimes with their own trust lists\n\n"
        "Node.js, Python `requests`/pip, Git, the AWS CLI and curl builds may ignore the OS store:\n"
        "`. runtimes/env.sh` sets `NODE_EXTRA_CA_CERTS`, `REQUESTS_CA_BUNDLE`, `SSL_CERT_FILE`,\n"
        "`PIP_CERT`, `GIT_SSL_CAINFO`, `AWS_CA_BUNDLE` and `CURL_CA_BUNDLE` (install the root into\n"
        "the system store first).\n" + proxy_section);
    fs::rename(tmp, out);
}

}  // namespace vigil::catools

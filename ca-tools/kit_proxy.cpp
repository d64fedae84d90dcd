// Per-platform proxy settings. A PAC URL is used wherever the platform reads one (Windows,
// macOS/iOS, GNOME, KDE, Chrome/Edge policies); a fixed proxy for shells and runtimes, which
// cannot. The exceptions are names only — each platform's syntax for them is different.
#include "ca-tools/kit_proxy.hpp"

#include <openssl/evp.h>

#include <cctype>
#include <stdexcept>

#include "core/encoding.hpp"
#include "tls/ca.hpp"

namespace vigil::catools {
namespace {

namespace fs = std::filesystem;

bool host_name(const std::string& h) {
    if (h.empty() || h.size() > 253 || h.front() == '.' || h.back() == '.' || h.front() == '-') return false;
    for (char c : h)
        if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '-' ||
              c == '.'))
            return false;
    return h.find("..") == std::string::npos;
}

std::pair<std::string, std::string> split_proxy(const std::string& p) {
    auto colon = p.rfind(':');
    return {p.substr(0, colon), p.substr(colon + 1)};
}

// A UUID-shaped name derived from the settings, so the same settings give the same profile.
std::string stable_uuid(const ProxySettings& s, const std::string& salt) {
    std::string h = core::sha256_hex(salt + "\n" + s.pac_url + "\n" + s.proxy);
    return h.substr(0, 8) + "-" + h.substr(8, 4) + "-4" + h.substr(13, 3) + "-a" + h.substr(17, 3) + "-" + h.substr(20, 12);
}

std::string xml(const std::string& s) {
    std::string out;
    for (char c : s) out += c == '&' ? "&amp;" : c == '<' ? "&lt;" : c == '>' ? "&gt;" : std::string(1, c);
    return out;
}

void put(const fs::path& path, const std::string& content, unsigned mode = 0644) {
    fs::create_directories(path.parent_path());
    tls::write_file_atomic(path, content, mode);
}

std::string join(const std::vector<std::string>& v, const std::string& sep) {
    std::string out;
    for (const auto& x : v) out += (out.empty() ? "" : sep) + x;
    return out;
}

std::string windows_reg(const ProxySettings& s) {
    // Windows' bypass list: "<local>" is every plain name; "*.x" the names below x.
    std::vector<std::string> bypass = {"<local>"};
    for (const auto& n : s.no_proxy) {
        if (n.front() == '.') {
            bypass.push_back(n.substr(1));
            bypass.push_back("*" + n);
        } else {
            bypass.push_back(n);
        }
    }
    std::string out =
        "Windows Registry Editor Version 5.00\n\n"
        "; Vigil proxy settings for every user of this machine (import as Administrator, or deploy\n"
        "; the same values with Group Policy Preferences > Registry; see README.md).\n\n"
        "[HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\Windows\\CurrentVersion\\Internet Settings]\n"
        "\"ProxySettingsPerUser\"=dword:00000000\n\n"
        "[HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Internet Settings]\n";
    if (!s.pac_url.empty()) out += "\"AutoConfigURL\"=\"" + s.pac_url + "\"\n";
    if (!s.proxy.empty())
        out += "\"ProxyEnable\"=dword:" + std::string(s.pac_url.empty() ? "00000001" : "00000000") + "\n\"ProxyServer\"=\"" +
               s.proxy + "\"\n\"ProxyOverride\"=\"" + join(bypass, ";") + "\"\n";
    // Chrome and Edge read their own policies first.
    for (const char* browser : {"Google\\Chrome", "Microsoft\\Edge"}) {
        out += std::string("\n[HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\") + browser + "]\n";
        if (!s.pac_url.empty()) {
            out += "\"ProxyMode\"=\"pac_script\"\n\"ProxyPacUrl\"=\"" + s.pac_url + "\"\n";
        } else {
            std::vector<std::string> chrome_bypass = {"<local>"};
            for (const auto& n : s.no_proxy) chrome_bypass.push_back(n.front() == '.' ? "*" + n : n);
            out += "\"ProxyMode\"=\"fixed_servers\"\n\"ProxyServer\"=\"" + s.proxy + "\"\n\"ProxyBypassList\"=\"" +
                   join(chrome_bypass, ";") + "\"\n";
        }
    }
    return out;
}

std::string mobileconfig(const ProxySettings& s) {
    std::string payload;
    if (!s.pac_url.empty()) {
        payload = "      <key>ProxyType</key>\n      <string>Auto</string>\n"
                  "      <key>ProxyPACURL</key>\n      <string>" + xml(s.pac_url) + "</string>\n"
                  "      <key>ProxyPACFallbackAllowed</key>\n      <false/>\n";
    } else {
        auto [host, port] = split_proxy(s.proxy);
        payload = "      <key>ProxyType</key>\n      <string>Manual</string>\n"
                  "      <key>ProxyServer</key>\n      <string>" + xml(host) + "</string>\n"
                  "      <key>ProxyServerPort</key>\n      <integer>" + port + "</integer>\n";
    }
    return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
           "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
           "<plist version=\"1.0\">\n<dict>\n  <key>PayloadContent</key>\n  <array>\n    <dict>\n"
           "      <key>PayloadType</key>\n      <string>com.apple.proxy.http.global</string>\n"
           "      <key>PayloadVersion</key>\n      <integer>1</integer>\n"
           "      <key>PayloadIdentifier</key>\n      <string>invalid.vigil.proxy." + stable_uuid(s, "payload") + "</string>\n"
           "      <key>PayloadUUID</key>\n      <string>" + stable_uuid(s, "payload") + "</string>\n"
           "      <key>PayloadDisplayName</key>\n      <string>Company web gateway</string>\n" + payload +
           "      <key>ProxyCaptiveLoginAllowed</key>\n      <true/>\n"
           "    </dict>\n  </array>\n"
           "  <key>PayloadDisplayName</key>\n  <string>Company web gateway (proxy)</string>\n"
           "  <key>PayloadIdentifier</key>\n  <string>invalid.vigil.proxy-profile." + stable_uuid(s, "profile") + "</string>\n"
           "  <key>PayloadType</key>\n  <string>Configuration</string>\n"
           "  <key>PayloadUUID</key>\n  <string>" + stable_uuid(s, "profile") + "</string>\n"
           "  <key>PayloadVersion</key>\n  <integer>1</integer>\n</dict>\n</plist>\n";
}

std::string gnome(const ProxySettings& s) {
    std::vector<std::string> ignore = {"'localhost'", "'127.0.0.0/8'", "'::1'"};
    for (const auto& n : s.no_proxy) ignore.push_back("'" + (n.front() == '.' ? "*" + n : n) + "'");
    std::string out = "#!/bin/sh\n# GNOME: the company web gateway for this user's session (run as the user).\nset -eu\n";
    if (!s.pac_url.empty()) {
        out += "gsettings set org.gnome.system.proxy mode 'auto'\n"
               "gsettings set org.gnome.system.proxy autoconfig-url '" + s.pac_url + "'\n";
    } else {
        auto [host, port] = split_proxy(s.proxy);
        out += "gsettings set org.gnome.system.proxy mode 'manual'\n";
        for (const char* scheme : {"http", "https"})
            out += std::string("gsettings set org.gnome.system.proxy.") + scheme + " host '" + host + "'\n" +
                   "gsettings set org.gnome.system.proxy." + scheme + " port " + port + "\n";
        out += "gsettings set org.gnome.system.proxy ignore-hosts \"[" + join(ignore, ", ") + "]\"\n";
    }
    return out;
}

std::string kde(const ProxySettings& s) {
    std::string out = "#!/bin/sh\n# KDE Plasma: the company web gateway for this user (run as the user).\nset -eu\n"
                      "W=\"kwriteconfig5 --file kioslaverc --group 'Proxy Settings'\"\n";
    if (!s.pac_url.empty()) {
        out += "eval \"$W --key ProxyType 2\"\neval \"$W --key 'Proxy Config Script' '" + s.pac_url + "'\"\n";
    } else {
        auto [host, port] = split_proxy(s.proxy);
        std::vector<std::string> skip = {"localhost", "127.0.0.1"};
        for (const auto& n : s.no_proxy) skip.push_back(n);
        out += "eval \"$W --key ProxyType 1\"\n"
               "eval \"$W --key httpProxy 'http://" + host + " " + port + "'\"\n"
               "eval \"$W --key httpsProxy 'http://" + host + " " + port + "'\"\n"
               "eval \"$W --key NoProxyFor '" + join(skip, ",") + "'\"\n";
    }
    return out + "dbus-send --type=signal /KIO/Scheduler org.kde.KIO.Scheduler.reparseSlaveConfiguration string:'' || true\n";
}

std::string shell(const ProxySettings& s) {
    auto [host, port] = split_proxy(s.proxy);
    std::vector<std::string> no = {"localhost", "127.0.0.1", "::1"};
    std::vector<std::string> java_no = {"localhost", "127.*"};
    for (const auto& n : s.no_proxy) {
        no.push_back(n);
        java_no.push_back(n.front() == '.' ? "*" + n : n);
        if (n.front() == '.') java_no.push_back(n.substr(1));
    }
    const std::string url = "http://" + s.proxy;
    return "# Shells and runtimes (curl, wget, Python, Node, Go, Ruby, pip, npm, git): source this\n"
           "# file, or copy the lines to /etc/environment (without 'export').\n"
           "export http_proxy='" + url + "'\nexport https_proxy='" + url + "'\n"
           "export HTTP_PROXY='" + url + "'\nexport HTTPS_PROXY='" + url + "'\n"
           "export no_proxy='" + join(no, ",") + "'\nexport NO_PROXY=\"$no_proxy\"\n"
           "# Java reads system properties, not the variables above.\n"
           "export JAVA_TOOL_OPTIONS=\"${JAVA_TOOL_OPTIONS:-} -Dhttp.proxyHost=" + host + " -Dhttp.proxyPort=" + port +
           " -Dhttps.proxyHost=" + host + " -Dhttps.proxyPort=" + port + " -Dhttp.nonProxyHosts=" + join(java_no, "|") +
           "\"\n";
}

}  // namespace

void check_proxy_settings(const ProxySettings& s) {
    if (!s.pac_url.empty()) {
        const bool scheme = s.pac_url.rfind("http://", 0) == 0 || s.pac_url.rfind("https://", 0) == 0;
        if (!scheme) throw std::invalid_argument("--pac-url: expected an http:// or https:// URL");
        for (char c : s.pac_url)
            if (static_cast<unsigned char>(c) <= ' ' || c == '"' || c == '\'' || c == '\\' || c == '<' || c == '>' ||
                c == '&' || c == '`' || c == '$' || c == 0x7f)
                throw std::invalid_argument("--pac-url: the URL has a space, quote or shell or markup character");
    }
    if (!s.proxy.empty()) {
        auto colon = s.proxy.rfind(':');
        if (colon == std::string::npos) throw std::invalid_argument("--proxy: expected HOST:PORT");
        auto [host, port] = split_proxy(s.proxy);
        const bool digits = !port.empty() && port.size() <= 5 &&
                            port.find_first_not_of("0123456789") == std::string::npos;
        if (!host_name(host) || !digits || std::stoi(port) < 1 || std::stoi(port) > 65535)
            throw std::invalid_argument("--proxy: expected HOST:PORT with a lower-case host name or IPv4 address, not " +
                                        s.proxy);
    }
    for (const auto& n : s.no_proxy)
        if (!host_name(n.front() == '.' ? n.substr(1) : n))
            throw std::invalid_argument("--no-proxy: \"" + n +
                                        "\": expected a lower-case host name, or .suffix for a domain and every name "
                                        "below it (no patterns)");
    if (s.empty() && !s.no_proxy.empty()) throw std::invalid_argument("--no-proxy needs --proxy or --pac-url");
}

std::string write_proxy_kit(const fs::path& dir, const ProxySettings& s) {
    const fs::path p = dir / "proxy";
    put(p / "windows" / "proxy.reg", windows_reg(s));
    put(p / "macos" / "proxy.mobileconfig", mobileconfig(s));
    put(p / "linux" / "gnome.sh", gnome(s), 0755);
    put(p / "linux" / "kde.sh", kde(s), 0755);
    if (!s.proxy.empty()) put(p / "shell" / "proxy.sh", shell(s));
    std::string how = s.pac_url.empty() ? "the proxy `" + s.proxy + "`" : "the PAC file `" + s.pac_url + "`";
    std::string out =
        "\n## Proxy settings\n\n"
        "The files in `proxy/` point clients at the gateway through " + how + ".\n\n"
        "- **Windows**: `proxy/windows/proxy.reg` sets the machine-wide Internet settings (WinINet:\n"
        "  Edge, Chrome, most applications) and the Chrome and Edge policies. Domain: Group Policy\n"
        "  Management → a GPO for the computers → Computer Configuration → Preferences → Windows\n"
        "  Settings → Registry, one item per value of the file (or import it with `reg import`).\n"
        "  Services using WinHTTP: `netsh winhttp import proxy source=ie` after the import.\n"
        "- **macOS and iOS**: `proxy/macos/proxy.mobileconfig` (a Global HTTP Proxy payload) through\n"
        "  your MDM; iOS applies it to supervised devices only.\n"
        "- **Linux desktops**: `proxy/linux/gnome.sh` (gsettings) or `proxy/linux/kde.sh`\n"
        "  (kioslaverc), run in each user's session.\n";
    if (!s.proxy.empty())
        out += "- **Shells and runtimes**: `. proxy/shell/proxy.sh` sets `http_proxy`, `https_proxy`,\n"
               "  `no_proxy` (and the upper-case forms) and `JAVA_TOOL_OPTIONS` for Java; copy its\n"
               "  lines into `/etc/environment` or a profile script for everyone.\n";
    else
        out += "- **Shells and runtimes** cannot read a PAC file: run `vigil-ca kit` with `--proxy\n"
               "  HOST:PORT` as well to get `proxy/shell/proxy.sh`.\n";
    if (!s.no_proxy.empty()) out += "\nDirect (not through the gateway): " + join(s.no_proxy, ", ") + ".\n";
    return out;
}

}  // namespace vigil::catools

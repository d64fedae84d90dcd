// The proxy half of the deployment kit (vigil-ca kit --pac-url / --proxy / --no-proxy): the
// settings that point each platform's clients at the gateway, beside the root certificate.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace vigil::catools {

struct ProxySettings {
    std::string pac_url;                // http(s)://... (the gateway's /proxy.pac)
    std::string proxy;                  // host:port, for what cannot read a PAC file
    std::vector<std::string> no_proxy;  // exact names, or .suffix (the domain and below)
    bool empty() const { return pac_url.empty() && proxy.empty(); }
};

// Checks every value (the files are scripts and registry files: nothing may break out of a
// quoted string); throws std::invalid_argument with the option and the reason.
void check_proxy_settings(const ProxySettings& s);

// Writes `dir`/proxy/...: windows/proxy.reg (+ WinHTTP and GPO steps), macos/proxy.mobileconfig,
// linux/gnome.sh, linux/kde.sh, shell/proxy.sh (env and Java), and returns the README section.
std::string write_proxy_kit(const std::filesystem::path& dir, const ProxySettings& s);

}  // namespace vigil::catools

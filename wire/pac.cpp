// PAC generation. The JavaScript uses only the functions every PAC engine has (Netscape's
// original set: isPlainHostName, dnsDomainIs, isInNet); IPv4 literals are recognised without
// a DNS lookup, so a URL by name never waits for the client's resolver.
#include "wire/pac.hpp"

#include "io/address.hpp"

namespace vigil::wire {
namespace {

// A JavaScript string literal; config values are host names and addresses, checked at load,
// but quoted anyway.
std::string js(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) out += c;
    }
    return out + "\"";
}

std::string netmask(unsigned prefix) {
    uint32_t m = prefix == 0 ? 0 : ~uint32_t(0) << (32 - prefix);
    return std::to_string(m >> 24) + "." + std::to_string((m >> 16) & 255) + "." + std::to_string((m >> 8) & 255) +
           "." + std::to_string(m & 255);
}

}  // namespace

bool is_pac_path(std::string_view path) { return path == "/proxy.pac" || path == "/wpad.dat"; }

std::string pac_fallback_proxy(std::string_view host_header, const std::string& listen, uint16_t proxy_port) {
    if (auto a = io::parse_authority(host_header, 80); a && !a->host.empty()) {
        std::string host = a->host.find(':') != std::string::npos ? "[" + a->host + "]" : a->host;
        return host + ":" + std::to_string(proxy_port);
    }
    return listen;
}

std::string pac_file(const config::Config::Pac& pac, const std::string& fallback_proxy) {
    std::string out =
        "// Proxy auto-configuration from Vigil ([pac] in vigil.toml; docs/deploy.md).\n"
        "function FindProxyForURL(url, host) {\n"
        "    host = host.toLowerCase();\n";
    // An IPv6 literal has no dot either: it is not a plain host name.
    if (pac.plain_hostnames_direct)
        out += "    if (isPlainHostName(host) && host.indexOf(\":\") < 0) return \"DIRECT\";\n";
    for (const auto& h : pac.direct_hosts) {
        if (h.front() == '.')
            out += "    if (host == " + js(h.substr(1)) + " || dnsDomainIs(host, " + js(h) + ")) return \"DIRECT\";\n";
        else
            out += "    if (host == " + js(h) + ") return \"DIRECT\";\n";
    }
    if (!pac.direct_networks.empty()) {
        out += "    if (/^[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}$/.test(host)) {\n";
        for (const auto& n : pac.direct_networks)
            out += "        if (isInNet(host, " + js(n.base.to_string()) + ", " + js(netmask(n.prefix)) +
                   ")) return \"DIRECT\";\n";
        out += "    }\n";
    }
    std::string route;
    const auto& proxies = pac.proxies.empty() ? std::vector<std::string>{fallback_proxy} : pac.proxies;
    for (const auto& p : proxies) route += (route.empty() ? "" : "; ") + std::string("PROXY ") + p;
    if (pac.fallback_direct) route += "; DIRECT";
    out += "    return " + js(route) + ";\n}\n";
    return out;
}

}  // namespace vigil::wire

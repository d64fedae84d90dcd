// CIDR, port range and hosts-file parsing and matching.
#include "io/address.hpp"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <strings.h>

#include "tls/mint.hpp"

namespace vigil::io {
namespace {

address unmap(const address& a) {
    if (a.is_v6() && a.to_v6().is_v4_mapped())
        return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, a.to_v6());
    return a;
}

}  // namespace

std::optional<Cidr> Cidr::parse(std::string_view text) {
    auto slash = text.find('/');
    boost::system::error_code ec;
    address base = boost::asio::ip::make_address(std::string(text.substr(0, slash)), ec);
    if (ec) return std::nullopt;
    unsigned max = base.is_v4() ? 32 : 128;
    unsigned prefix = max;
    if (slash != std::string_view::npos) {
        auto digits = text.substr(slash + 1);
        auto [p, err] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
        if (err != std::errc() || p != digits.data() + digits.size() || digits.empty() || prefix > max)
            return std::nullopt;
    }
    return Cidr{unmap(base), prefix};
}

bool Cidr::contains(const address& raw) const {
    address a = unmap(raw);
    if (a.is_v4() != base.is_v4()) return false;
    if (a.is_v4()) {
        uint32_t mask = prefix == 0 ? 0 : ~uint32_t(0) << (32 - prefix);
        return (a.to_v4().to_uint() & mask) == (base.to_v4().to_uint() & mask);
    }
    auto x = a.to_v6().to_bytes(), y = base.to_v6().to_bytes();
    unsigned bits = prefix;
    for (size_t i = 0; i < 16 && bits > 0; ++i, bits = bits >= 8 ? bits - 8 : 0) {
        unsigned char mask = bits >= 8 ? 0xff : static_cast<unsigned char>(0xff << (8 - bits));
        if ((x[i] & mask) != (y[i] & mask)) return false;
    }
    return true;
}

std::string Cidr::to_string() const { return base.to_string() + "/" + std::to_string(prefix); }

bool any_contains(const std::vector<Cidr>& nets, const address& a) {
    return std::any_of(nets.begin(), nets.end(), [&](const Cidr& c) { return c.contains(a); });
}

bool is_non_public(const address& raw) {
    static const std::vector<Cidr> ranges = [] {
        std::vector<Cidr> v;
        for (const char* s : {"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
                              "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15",
                              "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4", "::/128", "::1/128",
                              "64:ff9b:1::/48", "100::/64", "2001:db8::/32", "fc00::/7", "fe80::/10", "ff00::/8"})
            v.push_back(*Cidr::parse(s));
        return v;
    }();
    return any_contains(ranges, unmap(raw));
}

std::optional<PortRange> PortRange::parse(std::string_view text) {
    auto num = [](std::string_view s) -> std::optional<uint16_t> {
        unsigned v = 0;
        auto [p, err] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (s.empty() || err != std::errc() || p != s.data() + s.size() || v == 0 || v > 65535) return std::nullopt;
        return static_cast<uint16_t>(v);
    };
    auto dash = text.find('-');
    auto lo = num(text.substr(0, dash));
    auto hi = dash == std::string_view::npos ? lo : num(text.substr(dash + 1));
    if (!lo || !hi || *hi < *lo) return std::nullopt;
    return PortRange{*lo, *hi};
}

bool any_contains(const std::vector<PortRange>& ranges, uint16_t port) {
    return std::any_of(ranges.begin(), ranges.end(), [&](const PortRange& r) { return r.contains(port); });
}

HostsFile HostsFile::load(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error(path + ": cannot read hosts file");
    HostsFile hf;
    std::string line;
    for (int lineno = 1; std::getline(in, line); ++lineno) {
        if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
        std::istringstream words(line);
        std::string addr_text, name;
        if (!(words >> addr_text)) continue;
        boost::system::error_code ec;
        address addr = boost::asio::ip::make_address(addr_text, ec);
        if (ec) throw std::runtime_error(path + ":" + std::to_string(lineno) + ": not an IP address: " + addr_text);
        bool any = false;
        while (words >> name) {
            any = true;
            name = lower(name);
            if (!name.empty() && name.back() == '.') name.pop_back();
            if (name.rfind("*.", 0) == 0)
                hf.suffix_.emplace(name.substr(2), addr);
            else
                hf.exact_.emplace(name, addr);
        }
        if (!any) throw std::runtime_error(path + ":" + std::to_string(lineno) + ": address without a host name");
    }
    return hf;
}

std::optional<address> HostsFile::lookup(std::string_view host) const {
    std::string h = lower(host);
    if (auto it = exact_.find(h); it != exact_.end()) return it->second;
    // Walk the parent domains from the left: a.b.c -> b.c -> c (label-anchored suffixes).
    for (size_t dot = h.find('.'); dot != std::string::npos; dot = h.find('.', dot + 1)) {
        if (auto it = suffix_.find(h.substr(dot + 1)); it != suffix_.end()) return it->second;
    }
    return std::nullopt;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
    return out;
}

std::string Authority::host_port() const {
    std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
    return h + ":" + std::to_string(port);
}

std::optional<Authority> parse_authority(std::string_view text, std::optional<uint16_t> default_port) {
    if (text.empty() || text.find('@') != std::string_view::npos) return std::nullopt;
    std::string_view host, port_text;
    if (text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        host = text.substr(0, close + 1);
        auto rest = text.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') return std::nullopt;
            port_text = rest.substr(1);
            if (port_text.empty()) return std::nullopt;
        }
    } else {
        auto colon = text.rfind(':');
        host = text.substr(0, colon);
        if (colon != std::string_view::npos) {
            port_text = text.substr(colon + 1);
            if (port_text.empty()) return std::nullopt;
        }
    }
    Authority a;
    if (port_text.empty()) {
        if (!default_port) return std::nullopt;
        a.port = *default_port;
    } else {
        unsigned v = 0;
        auto [p, err] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), v);
        if (err != std::errc() || p != port_text.data() + port_text.size() || v == 0 || v > 65535)
            return std::nullopt;
        a.port = static_cast<uint16_t>(v);
    }
    if (host.size() > 2 && host.front() == '[' && host.find(':') == std::string_view::npos) return std::nullopt;
    a.host = tls::normalize_host(host);
    if (a.host.empty()) return std::nullopt;
    // A bracketed literal must be IPv6, an unbracketed one must not be.
    bool bracketed = host.front() == '[';
    if (bracketed != (a.host.find(':') != std::string::npos)) return std::nullopt;
    return a;
}

std::optional<AbsoluteUrl> parse_absolute_url(std::string_view text) {
    auto sep = text.find("://");
    if (sep == std::string_view::npos) return std::nullopt;
    AbsoluteUrl u;
    u.scheme = lower(text.substr(0, sep));
    if (u.scheme != "http" && u.scheme != "https") return std::nullopt;
    auto rest = text.substr(sep + 3);
    auto path_start = rest.find_first_of("/?#");
    auto authority = parse_authority(rest.substr(0, path_start), uint16_t(u.scheme == "http" ? 80 : 443));
    if (!authority) return std::nullopt;
    u.authority = *authority;
    std::string_view target = path_start == std::string_view::npos ? std::string_view() : rest.substr(path_start);
    if (auto hash = target.find('#'); hash != std::string_view::npos) target = target.substr(0, hash);
    u.target = target.empty() || target.front() != '/' ? "/" + std::string(target) : std::string(target);
    return u;
}

std::string full_url(const std::string& scheme, const Authority& a, const std::string& target) {
    std::string host = a.host.find(':') != std::string::npos ? "[" + a.host + "]" : a.host;
    bool default_port = (scheme == "https" && a.port == 443) || (scheme == "http" && a.port == 80);
    return scheme + "://" + host + (default_port ? "" : ":" + std::to_string(a.port)) + target;
}

}  // namespace vigil::io

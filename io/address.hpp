// Addresses as the gateway compares them: host names, authorities and absolute URLs as a proxy
// receives them, CIDRs, port ranges, the hosts file.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/ip/address.hpp>

namespace vigil::io {

using boost::asio::ip::address;

// An IPv4 or IPv6 network; IPv4-mapped IPv6 addresses match IPv4 networks.
struct Cidr {
    address base;
    unsigned prefix = 0;
    static std::optional<Cidr> parse(std::string_view text);
    bool contains(const address& a) const;
    std::string to_string() const;
};

bool any_contains(const std::vector<Cidr>& nets, const address& a);

// Loopback, private, link-local, CGNAT, multicast, unspecified and reserved ranges.
bool is_non_public(const address& a);

// Inclusive port range "443" or "1024-65535".
struct PortRange {
    uint16_t lo = 0, hi = 0;
    static std::optional<PortRange> parse(std::string_view text);
    bool contains(uint16_t p) const { return p >= lo && p <= hi; }
};
bool any_contains(const std::vector<PortRange>& ranges, uint16_t port);

// Static name -> address map consulted before DNS (like Squid's hosts_file): lines of
// "ADDRESS NAME [NAME...]", '#' comments; a NAME "*.example" matches every name below
// example (label-anchored, never a regex).
class HostsFile {
public:
    static HostsFile load(const std::string& path);  // throws std::runtime_error naming file:line
    std::optional<address> lookup(std::string_view host) const;
    size_t size() const { return exact_.size() + suffix_.size(); }

private:
    std::unordered_map<std::string, address> exact_;
    std::unordered_map<std::string, address> suffix_;  // key without "*."
};

bool iequals(std::string_view a, std::string_view b);
std::string_view trim(std::string_view s);  // spaces and tabs at either end (HTTP's OWS)
std::string lower(std::string_view s);      // ASCII lower case

// host[:port] of a CONNECT request: port required, no userinfo, IPv6 in brackets.
struct Authority {
    std::string host;  // normalised (lower case, no brackets, no trailing dot)
    uint16_t port = 0;
    std::string host_port() const;  // "[::1]:443" / "a.example:443"
};
std::optional<Authority> parse_authority(std::string_view text, std::optional<uint16_t> default_port);

// http://host[:port]/path?query (absolute-form, as sent to a proxy).
struct AbsoluteUrl {
    std::string scheme;  // "http" or "https", lower case
    Authority authority;
    std::string target;  // origin-form: "/path?query"
};
std::optional<AbsoluteUrl> parse_absolute_url(std::string_view text);

// "https://host[:port]/path" (default ports omitted).
std::string full_url(const std::string& scheme, const Authority& a, const std::string& target);

}  // namespace vigil::io

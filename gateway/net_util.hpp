// Address classification and matching for the gateway's access rules: CIDRs, port ranges, hosts file.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/ip/address.hpp>

namespace vigil::gateway {

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

}  // namespace vigil::gateway

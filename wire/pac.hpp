// The proxy auto-configuration file (PAC, also served as WPAD's wpad.dat): FindProxyForURL
// built from [pac]. Every DIRECT decision is an exact name, a domain suffix or an IPv4 network;
// there is no pattern a host could be crafted to match (docs/deploy.md#client-configuration).
#pragma once

#include <string>
#include <string_view>

#include "config/config.hpp"

namespace vigil::wire {

inline constexpr const char* kPacContentType = "application/x-ns-proxy-autoconfig";

// Whether `path` (query removed) is one of the PAC file's names.
bool is_pac_path(std::string_view path);

// The PAC file. `fallback_proxy` ("host:port") is used when pac.proxies is empty.
std::string pac_file(const config::Config::Pac& pac, const std::string& fallback_proxy);

// host:port for the PAC when pac.proxies is empty: the name in `host_header` (as the client
// reached Vigil) with the proxy's port, else the proxy's listen address itself.
std::string pac_fallback_proxy(std::string_view host_header, const std::string& listen, uint16_t proxy_port);

}  // namespace vigil::wire

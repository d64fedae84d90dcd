// The listening side of the process: the listen address, one SO_REUSEPORT acceptor per
// worker (and the check that no other process listens there), the ready file, the CPU count.
#pragma once

#include <memory>
#include <string>

#include "gateway/wiring.hpp"

namespace vigil::gateway {

// "ADDRESS:PORT" (IPv6 in brackets; port 0: the kernel picks one). Throws ConfigError.
tcp::endpoint parse_listen(const std::string& listen);

// The CPUs this process may use, for proxy.threads = 0.
unsigned usable_cpus();

// One gateway per address: throws when another process already listens on `ep`.
void ensure_address_free(const tcp::endpoint& ep);

// The worker's acceptor on `ep`, shared with the other workers through SO_REUSEPORT.
void open_acceptor(session::Worker& w, tcp::endpoint ep);

// {"listen": "...", "admin_port": N, "pid": N}, written atomically once the gateway accepts.
void write_ready_file(const std::string& path, const tcp::endpoint& ep, unsigned short admin_port);

}  // namespace vigil::gateway

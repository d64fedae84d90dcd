// Internal: the admin listener — /healthz, /readyz, /metrics (Prometheus text) and the
// onboarding page, on its own address, never on the proxy port.
#pragma once

#include "gateway/state.hpp"

namespace vigil::gateway {

// Prometheus text exposition of every counter and gauge.
std::string metrics_text(Gateway& gw);

net::awaitable<void> admin_accept_loop(Gateway& gw, tcp::acceptor& acceptor);

}  // namespace vigil::gateway

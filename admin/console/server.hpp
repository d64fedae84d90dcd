// vigil-console's HTTPS server: sign-in, sessions, CSRF, roles, the pages and downloads.
#pragma once

#include "config/config.hpp"

namespace vigil::console {

// Serves until SIGTERM/SIGINT; returns the exit code. `ready_file`: written with the port once
// listening (tests use port 0).
int serve(const config::Config& cfg, const std::string& users_path, const std::string& ready_file);

}  // namespace vigil::console

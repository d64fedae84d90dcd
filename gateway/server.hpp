// The gateway process: loads CA and settings, runs the worker threads, and shuts down gracefully.
#pragma once

#include <string>

#include "config/config.hpp"

namespace vigil::gateway {

using config::Config;

struct RunOptions {
    std::string ready_file;  // written with {"listen": "...", "pid": N} once accepting
    // Read again on SIGHUP: keys that apply live are applied, the others named (restart).
    std::string config_path;
    config::Overrides overrides;
};

// Everything that can fail before serving (CA, hosts file, extra CA file, listen address)
// throws with one clear line. Used by --check-config too, with `bind` false.
void check_startup(const Config& cfg);

// Serves until SIGTERM/SIGINT, then drains in-flight transactions for up to shutdown_grace.
// Returns the process exit code.
int run_gateway(const Config& cfg, const RunOptions& opts);

}  // namespace vigil::gateway

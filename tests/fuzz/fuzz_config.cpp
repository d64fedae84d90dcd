// Fuzz target: the TOML configuration loader (file and --set overrides).
#include <unistd.h>

#include <cstdio>

#include "config/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const std::string path = "/tmp/vigil-fuzz-config-" + std::to_string(::getpid()) + ".toml";
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) return 0;
    std::fwrite(data, 1, size, f);
    std::fclose(f);
    try {
        vigil::config::load_config(path, {});
    } catch (const vigil::config::ConfigError&) {
    }
    std::string text(reinterpret_cast<const char*>(data), size);
    auto eq = text.find('=');
    if (eq != std::string::npos) {
        try {
            vigil::config::load_config("", {{text.substr(0, eq), text.substr(eq + 1)}});
        } catch (const vigil::config::ConfigError&) {
        }
    }
    return 0;
}

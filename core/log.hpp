// Minimal leveled logging to stderr; lines carry a connection id ("[C42]") when there is one.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace vigil::core {

enum class LogLevel { debug = 0, info = 1, warn = 2, error = 3 };

void set_log_level(std::string_view name);
bool log_enabled(LogLevel level);
void log_line(LogLevel level, uint64_t conn_id, std::string_view message);

inline void log_info(std::string_view m, uint64_t cid = 0) { log_line(LogLevel::info, cid, m); }
inline void log_warn(std::string_view m, uint64_t cid = 0) { log_line(LogLevel::warn, cid, m); }
inline void log_error(std::string_view m, uint64_t cid = 0) { log_line(LogLevel::error, cid, m); }
inline void log_debug(std::string_view m, uint64_t cid = 0) {
    if (log_enabled(LogLevel::debug)) log_line(LogLevel::debug, cid, m);
}

}  // namespace vigil::core

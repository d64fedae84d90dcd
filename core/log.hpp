// Leveled logging, one line per write so lines from different threads never interleave: text
// ("2026-12-03T12:00:00.123Z info [C42] message") or JSON lines (log.format = "json"), to
// stderr (the journal takes it from there) or to a file reopened on SIGUSR1 (docs/deploy.md).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace vigil::core {

enum class LogLevel { debug = 0, info = 1, warn = 2, error = 3 };

void set_log_level(std::string_view name);
// JSON lines: {"time": "...Z", "level": "info", "conn": 42, "msg": "..."}; "conn" only when
// there is a connection. The field names are stable (docs/deploy.md#logs).
void set_log_json(bool json);
// Appends to `path` (created 0640) instead of stderr; "" = stderr. Throws std::runtime_error
// naming the file when it cannot be opened.
void set_log_file(const std::string& path);
// Opens the log file again under its name (after logrotate moved it); the old descriptor is
// replaced atomically, so no line is lost or torn. Returns false, and keeps writing to the old
// file, when the new one cannot be opened. A no-op when logging to stderr.
bool reopen_log_file();
bool log_enabled(LogLevel level);
void log_line(LogLevel level, uint64_t conn_id, std::string_view message);

inline void log_info(std::string_view m, uint64_t cid = 0) { log_line(LogLevel::info, cid, m); }
inline void log_warn(std::string_view m, uint64_t cid = 0) { log_line(LogLevel::warn, cid, m); }
inline void log_error(std::string_view m, uint64_t cid = 0) { log_line(LogLevel::error, cid, m); }
inline void log_debug(std::string_view m, uint64_t cid = 0) {
    if (log_enabled(LogLevel::debug)) log_line(LogLevel::debug, cid, m);
}

// `s` as a JSON string literal, quotes included (control characters and invalid UTF-8 bytes
// escaped as \u00XX, so a line stays one line and valid JSON whatever a client sent).
std::string json_quote(std::string_view s);

}  // namespace vigil::core

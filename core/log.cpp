// stderr logger: one write per line so lines from different threads never interleave.
#include "core/log.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <algorithm>
#include <cstdio>
#include <ctime>

namespace vigil::core {
namespace {
std::atomic<int> g_level{int(LogLevel::info)};
const char* names[] = {"debug", "info", "warn", "error"};
}  // namespace

void set_log_level(std::string_view name) {
    for (int i = 0; i < 4; ++i)
        if (name == names[i]) g_level = i;
}

bool log_enabled(LogLevel level) { return int(level) >= g_level.load(std::memory_order_relaxed); }

void log_line(LogLevel level, uint64_t conn_id, std::string_view message) {
    if (!log_enabled(level)) return;
    auto now = std::chrono::system_clock::now();
    std::time_t secs = std::chrono::system_clock::to_time_t(now);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char stamp[40], prefix[96];
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    int n = conn_id ? std::snprintf(prefix, sizeof prefix, "%s.%03dZ %s [C%llu] ", stamp, int(ms), names[int(level)],
                                    static_cast<unsigned long long>(conn_id))
                    : std::snprintf(prefix, sizeof prefix, "%s.%03dZ %s ", stamp, int(ms), names[int(level)]);
    std::string line(prefix, static_cast<size_t>(std::max(n, 0)));
    line.append(message);
    line += '\n';
    (void)!::write(2, line.data(), line.size());
}

}  // namespace vigil::core

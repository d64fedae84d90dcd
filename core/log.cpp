// The logger: a level, a format and a descriptor, all swapped without a lock.
#include "core/log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>
#include <stdexcept>

namespace vigil::core {
namespace {
std::atomic<int> g_level{int(LogLevel::info)};
std::atomic<bool> g_json{false};
// The file's descriptor, fixed once set; a reopen dup2()s the new file onto it, so a writer
// never sees a closed descriptor.
std::atomic<int> g_fd{2};
std::mutex g_file_mu;
std::string g_path;  // under g_file_mu
const char* names[] = {"debug", "info", "warn", "error"};

int open_log(const std::string& path) {
    return ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
}

// The length of the valid UTF-8 sequence at s[i], or 0.
size_t utf8_length(std::string_view s, size_t i) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t n = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
    if (n == 0 || i + n > s.size()) return 0;
    for (size_t k = 1; k < n; ++k)
        if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return 0;
    return n;
}
}  // namespace

std::string json_quote(std::string_view s) {
    std::string out = "\"";
    out.reserve(s.size() + 2);
    for (size_t i = 0; i < s.size(); ++i) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += char(c);
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\t') {
            out += "\\t";
        } else if (c >= 0x20 && c < 0x7F) {
            out += char(c);
        } else if (size_t n = c >= 0x80 ? utf8_length(s, i) : 0; n) {
            out.append(s.substr(i, n));
            i += n - 1;
        } else {
            char esc[8];
            std::snprintf(esc, sizeof esc, "\\u%04x", c);
            out += esc;
        }
    }
    return out + "\"";
}

void set_log_level(std::string_view name) {
    for (int i = 0; i < 4; ++i)
        if (name == names[i]) g_level = i;
}

void set_log_json(bool json) { g_json = json; }

void set_log_file(const std::string& path) {
    std::lock_guard lock(g_file_mu);
    if (path.empty()) return;
    int fd = open_log(path);
    if (fd < 0) throw std::runtime_error("log.file " + path + ": " + std::strerror(errno));
    int old = g_fd.exchange(fd);
    if (old != 2) ::close(old);
    g_path = path;
}

bool reopen_log_file() {
    std::lock_guard lock(g_file_mu);
    if (g_path.empty()) return true;
    int fd = open_log(g_path);
    if (fd < 0) {
        log_line(LogLevel::error, 0, "cannot reopen log.file " + g_path + ": " + std::strerror(errno) +
                                         "; still writing to the file it had open");
        return false;
    }
    ::dup2(fd, g_fd.load());  // atomic for writers: their next write() lands in the new file
    ::close(fd);
    return true;
}

bool log_enabled(LogLevel level) { return int(level) >= g_level.load(std::memory_order_relaxed); }

void log_line(LogLevel level, uint64_t conn_id, std::string_view message) {
    if (!log_enabled(level)) return;
    auto now = std::chrono::system_clock::now();
    std::time_t secs = std::chrono::system_clock::to_time_t(now);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char stamp[40], ts[48];
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    std::snprintf(ts, sizeof ts, "%s.%03dZ", stamp, int(ms));
    std::string line;
    if (g_json.load(std::memory_order_relaxed)) {
        line = std::string("{\"time\":\"") + ts + "\",\"level\":\"" + names[int(level)] + "\"";
        if (conn_id) line += ",\"conn\":" + std::to_string(conn_id);
        line += ",\"msg\":" + json_quote(message) + "}";
    } else {
        line = std::string(ts) + " " + names[int(level)] + " ";
        if (conn_id) line += "[C" + std::to_string(conn_id) + "] ";
        line.append(message);
    }
    line += '\n';
    (void)!::write(g_fd.load(std::memory_order_relaxed), line.data(), line.size());
}

}  // namespace vigil::core

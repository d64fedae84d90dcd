// HTTP helpers of the console.
#include "admin/console/http_util.hpp"

#include <openssl/rand.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <fstream>

#include <boost/beast/http.hpp>

#include "core/encoding.hpp"

namespace vigil::console {

namespace http = boost::beast::http;

std::string token() {
    unsigned char b[24];
    RAND_bytes(b, sizeof b);
    return core::hex(b, sizeof b);
}

std::string url_decode(std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '+') {
            out += ' ';
        } else if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
                   std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
            out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

std::map<std::string, std::string> parse_form(std::string_view s) {
    std::map<std::string, std::string> out;
    while (!s.empty()) {
        auto amp = s.find('&');
        auto pair = s.substr(0, amp);
        auto eq = pair.find('=');
        if (eq != std::string_view::npos) out[url_decode(pair.substr(0, eq))] = url_decode(pair.substr(eq + 1));
        if (amp == std::string_view::npos) break;
        s.remove_prefix(amp + 1);
    }
    return out;
}

std::string cookie(const Request& req, const std::string& name) {
    std::string_view all = req[http::field::cookie];
    while (!all.empty()) {
        while (!all.empty() && all.front() == ' ') all.remove_prefix(1);
        auto semi = all.find(';');
        auto item = all.substr(0, semi);
        if (item.substr(0, name.size() + 1) == name + "=") return std::string(item.substr(name.size() + 1));
        if (semi == std::string_view::npos) break;
        all.remove_prefix(semi + 1);
    }
    return "";
}

int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Installed: PREFIX/share/vigil/console beside PREFIX/bin; in the build tree: the sources.
std::string static_dir() {
    char exe[4096] = {};
    const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        std::string dir(exe, size_t(n));
        dir = dir.substr(0, dir.rfind('/')) + "/../share/vigil/console";
        if (std::ifstream(dir + "/console.js")) return dir;
    }
    return VIGIL_CONSOLE_STATIC;
}

void harden(Response& res) {
    res.set(http::field::server, "Vigil console");
    res.set(http::field::cache_control, "no-store");
    res.set("Content-Security-Policy",
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
    res.set("X-Content-Type-Options", "nosniff");
    // same-origin, not no-referrer: with no-referrer Chromium posts forms with Origin: null, as a
    // cross-site request, and SameSite=Strict cookies (the session, the sign-in token) stay home.
    res.set("Referrer-Policy", "same-origin");
    res.set(http::field::strict_transport_security, "max-age=31536000");
}

}  // namespace vigil::console

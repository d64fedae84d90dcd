// The configuration's smaller types and name lists, apart from the Config struct itself.
#pragma once

#include <cstdint>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace vigil::config {

// One line naming the file, line and key at fault.
class ConfigError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// The variables a page template may use ([pages] template_dir; docs/configuration.md), and the
// templates a folder may hold: one per page kind ("block.html", ...) and "page.html" for the rest.
const std::set<std::string>& page_variables();
const std::set<std::string>& page_html_variables();  // HTML Vigil made: inserted unescaped
const std::vector<std::string>& page_template_names();  // "block", "warn", "error", "refuse", "aborted", "page"

// The origin certificate error classes that policy can name (tls/contexts.hpp CertVerdict codes).
const std::vector<std::string>& origin_error_classes();

// [http2] (docs/http2.md): streams a client connection may run at once, how many of them
// relay to HTTP/1.1 origins at once, and the receive windows that bound what a client's
// uploads make Vigil hold.
struct Http2Settings {
    uint32_t max_streams = 100;
    uint32_t origin_connections = 8;
    uint32_t stream_window = 256 * 1024;
    uint32_t connection_window = 1024 * 1024;
};

// tls.origin_exceptions: a known-broken internal site whose certificate problems of these
// classes are accepted, or whose exact certificate (SHA-256 fingerprint) is.
struct OriginException {
    std::string host;                // exact, normalised; never a pattern
    std::vector<std::string> allow;  // error classes
    std::string pin_sha256;          // "AB:CD:..." upper case, or ""
};

// One parent proxy (upstream.parents).
struct ParentConfig {
    std::string name;  // the configured name, or host:port
    std::string host;
    uint16_t port = 0;
};

}  // namespace vigil::config

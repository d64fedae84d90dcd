// Reading typed, range-checked values out of the TOML tree for the schema in config.cpp; every
// failure names file:line: key. Internal to config/.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "config/config.hpp"

namespace vigil::config {

// Where a value is: the file, the TOML node, the dotted key; fail() throws ConfigError with all three.
struct Where {
    std::string file;
    const toml::node& node;
    std::string key;
    [[noreturn]] void fail(const std::string& msg) const {
        std::ostringstream out;
        const auto& src = node.source();
        if (src.path) out << *src.path << ":" << src.begin.line << ": ";
        else if (!file.empty()) out << file << ": ";
        out << key << ": " << msg;
        throw ConfigError(out.str());
    }
};

std::string get_string(const Where& w);
// A file or folder: relative to the folder of the config file that names it (a --set value:
// relative to the current directory, as any command-line path).
std::string get_path(const Where& w);
bool get_bool(const Where& w);
int64_t get_int(const Where& w, int64_t lo, int64_t hi);
std::chrono::seconds get_seconds(const Where& w);
std::vector<std::string> get_string_list(const Where& w);
std::string get_secret_file(const Where& w);
std::string error_class(const Where& w, const std::string& v);
std::vector<std::string> get_origin_errors(const Where& w);
std::vector<std::string> get_alpn(const Where& w);
std::string normalize_pin(const Where& w, const std::string& text);
std::optional<std::string> exact_host(const std::string& text);
std::vector<OriginException> get_origin_exceptions(const Where& w);
std::vector<ParentConfig> get_parents(const Where& w);
std::vector<std::string> get_host_list(const Where& w);
int64_t get_rate(const Where& w);
uint64_t get_size(const Where& w, uint64_t lo);
std::map<std::string, int64_t> get_group_rates(const Where& w);
std::vector<Cidr> get_cidrs(const Where& w);
std::vector<PortRange> get_ports(const Where& w);
// An http(s) URL (for links on pages); `templated`: {url}, {category}, {transaction} allowed.
std::string get_url(const Where& w, bool templated);
// An image file (PNG, JPEG, GIF, SVG; at most 64 KiB) as a data: URI, read now.
std::string get_logo(const Where& w);
// A folder of page templates (block.html, warn.html, error.html, refuse.html, aborted.html,
// page.html), each read and parsed now; any other .html file there is an error (a misnamed
// template would silently not apply).
std::map<std::string, std::shared_ptr<const core::Template>> get_page_templates(const Where& w);

}  // namespace vigil::config

// Typed values out of the TOML tree (config/values.hpp).
#include "config/values.hpp"
#include <sys/stat.h>
#include <cerrno>
#include <cstring>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/encoding.hpp"
#include <cctype>

namespace vigil::config {

using io::lower;
using io::parse_authority;
using io::parse_rate;


std::string get_string(const Where& w) {
    if (auto v = w.node.value<std::string>()) return *v;
    w.fail("expected a string");
}

std::string get_path(const Where& w) {
    std::string v = get_string(w);
    const bool from_file = !w.file.empty() && w.file.rfind("--set", 0) != 0;
    if (v.empty() || v.front() == '/' || !from_file) return v;
    const size_t slash = w.file.rfind('/');
    if (slash == std::string::npos) return v;  // the file is in the current directory
    return w.file.substr(0, slash + 1) + v;
}

// A secret kept in a file of its own (its first line): the file must not be readable by others.
std::string get_secret_file(const Where& w) {
    const std::string path = get_path(w);
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) w.fail(path + ": " + std::strerror(errno));
    if (st.st_mode & 0007) w.fail(path + ": readable by others; it holds a password (chmod 640 or 600)");
    std::ifstream in(path);
    std::string line;
    if (!in || !std::getline(in, line)) w.fail(path + ": cannot be read, or is empty");
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
}

bool get_bool(const Where& w) {
    if (auto v = w.node.value<bool>()) return *v;
    w.fail("expected true or false");
}

int64_t get_int(const Where& w, int64_t lo, int64_t hi) {
    auto v = w.node.value<int64_t>();
    if (!v) w.fail("expected an integer");
    if (*v < lo || *v > hi) w.fail("must be between " + std::to_string(lo) + " and " + std::to_string(hi));
    return *v;
}

std::chrono::seconds get_seconds(const Where& w) { return std::chrono::seconds(get_int(w, 1, 86400)); }

std::vector<std::string> get_string_list(const Where& w) {
    const toml::array* arr = w.node.as_array();
    if (!arr) w.fail("expected an array of strings");
    std::vector<std::string> out;
    for (const auto& el : *arr) {
        auto s = el.value<std::string>();
        if (!s) w.fail("expected an array of strings");
        out.push_back(*s);
    }
    return out;
}

std::string error_class(const Where& w, const std::string& v) {
    const auto& classes = origin_error_classes();
    if (std::find(classes.begin(), classes.end(), v) == classes.end()) {
        std::string all;
        for (const auto& c : classes) all += (all.empty() ? "" : ", ") + c;
        w.fail("unknown certificate error class \"" + v + "\" (" + all + ")");
    }
    return v;
}

// ["h2", "http/1.1"]: ALPN protocol names Vigil implements, each once, at least one.
std::vector<std::string> get_alpn(const Where& w) {
    std::vector<std::string> list = get_string_list(w);
    if (list.empty()) w.fail("expected at least one of \"h2\", \"http/1.1\"");
    for (size_t i = 0; i < list.size(); ++i) {
        if (list[i] != "h2" && list[i] != "http/1.1") w.fail("unknown protocol \"" + list[i] + "\" (\"h2\", \"http/1.1\")");
        for (size_t j = 0; j < i; ++j)
            if (list[j] == list[i]) w.fail("\"" + list[i] + "\" is listed twice");
    }
    return list;
}

// { expired = "warn", self_signed = "block", ... }
std::vector<std::string> get_origin_errors(const Where& w) {
    const toml::table* t = w.node.as_table();
    if (!t) w.fail("expected a table of error class = \"block\" | \"warn\"");
    std::vector<std::string> warn;
    for (const auto& [name, value] : *t) {
        const std::string cls = error_class(w, std::string(name.str()));
        auto v = value.value<std::string>();
        if (!v || (*v != "block" && *v != "warn")) w.fail(cls + ": expected \"block\" or \"warn\" (never allow)");
        if (*v == "warn") warn.push_back(cls);
    }
    return warn;
}

// A fingerprint as vigil-ca and openssl print it, with or without colons, any case.
std::string normalize_pin(const Where& w, const std::string& text) {
    std::string hex;
    for (char c : text)
        if (c != ':') hex += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (hex.size() != 64 || hex.find_first_not_of("0123456789ABCDEF") != std::string::npos)
        w.fail("pin_sha256 must be a SHA-256 fingerprint (64 hex digits, colons allowed)");
    std::string out;
    for (size_t i = 0; i < hex.size(); i += 2) out += (out.empty() ? "" : ":") + hex.substr(i, 2);
    return out;
}

// One host name or IP address as the gateway compares them (lower case, no trailing dot), or
// nothing when the text holds anything else (wildcards, patterns, spaces).
std::optional<std::string> exact_host(const std::string& text) {
    std::string h = lower(text);
    if (!h.empty() && h.back() == '.') h.pop_back();
    if (h.empty() || h.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789.-:") != std::string::npos)
        return std::nullopt;
    return h;
}

// [ { host = "intranet.corp.example", allow = ["self_signed"] }, { host = "...", pin_sha256 = "..." } ]
std::vector<OriginException> get_origin_exceptions(const Where& w) {
    const toml::array* arr = w.node.as_array();
    if (!arr) w.fail("expected an array of { host = ..., allow = [...] | pin_sha256 = ... }");
    std::vector<OriginException> out;
    for (const auto& el : *arr) {
        const toml::table* t = el.as_table();
        if (!t) w.fail("expected { host = ..., allow = [...] | pin_sha256 = ... }");
        OriginException e;
        for (const auto& [name, value] : *t) {
            const std::string k(name.str());
            Where at{w.file, value, w.key + "." + k};
            if (k == "host") {
                auto h = exact_host(get_string(at));
                if (!h) at.fail("expected one exact host name or IP address (no wildcards or patterns)");
                e.host = *h;
            } else if (k == "allow") {
                for (const auto& c : get_string_list(at)) e.allow.push_back(error_class(at, c));
            } else if (k == "pin_sha256") {
                e.pin_sha256 = normalize_pin(at, get_string(at));
            } else {
                at.fail("unknown key (host, allow, pin_sha256)");
            }
        }
        if (e.host.empty()) w.fail("every exception needs a host");
        if (e.allow.empty() && e.pin_sha256.empty()) w.fail(e.host + ": give allow = [...] or pin_sha256");
        out.push_back(std::move(e));
    }
    return out;
}

// [ { address = "proxy1.corp:3128", name = "dc1" }, "proxy2.corp:8080", ... ]
std::vector<ParentConfig> get_parents(const Where& w) {
    const toml::array* arr = w.node.as_array();
    if (!arr) w.fail("expected an array of { address = \"host:port\", name = \"...\" }");
    std::vector<ParentConfig> out;
    for (const auto& el : *arr) {
        Where at{w.file, el, w.key};
        std::string address, name;
        if (auto s = el.value<std::string>()) {
            address = *s;
        } else if (const toml::table* t = el.as_table()) {
            for (const auto& [k, v] : *t) {
                Where kv{w.file, v, w.key + "." + std::string(k.str())};
                if (k.str() == "address") address = get_string(kv);
                else if (k.str() == "name") name = get_string(kv);
                else kv.fail("unknown key (address, name)");
            }
        } else {
            at.fail("expected \"host:port\" or { address = \"host:port\", name = \"...\" }");
        }
        auto a = parse_authority(address, std::nullopt);
        if (!a || a->port == 0) at.fail("\"" + address + "\" is not host:port");
        out.push_back({name.empty() ? a->host_port() : name, a->host, a->port});
    }
    return out;
}

// Anchored host names: "intranet.example" (that name) or ".corp.example" (it and below).
std::vector<std::string> get_host_list(const Where& w) {
    std::vector<std::string> out;
    for (const auto& h : get_string_list(w)) {
        const bool suffix = !h.empty() && h.front() == '.';
        auto bare = exact_host(suffix ? h.substr(1) : h);
        if (!bare || bare->front() == '.')
            w.fail("\"" + h + "\": expected a host name, or .suffix for a domain and every name below it (no patterns)");
        out.push_back((suffix ? "." : "") + *bare);
    }
    return out;
}

// A bandwidth: bytes per second as an integer, or a string with a unit ("2MB", "10Mbit").
int64_t get_rate(const Where& w) {
    if (w.node.is_integer()) {
        const int64_t v = *w.node.value<int64_t>();
        if (v == 0 || (v >= 1024 && v <= 1'000'000'000'000)) return v;
        w.fail("bytes per second must be 0 (off) or between 1024 and 10^12");
    }
    if (!w.node.is_string()) w.fail("expected bytes per second or a rate such as \"2MB\", \"512KiB\", \"10Mbit\"");
    try {
        return parse_rate(get_string(w));
    } catch (const std::invalid_argument& e) {
        w.fail(e.what());
    }
}

// A size in bytes: an integer, or a string with a unit ("64MB", "1GiB").
uint64_t get_size(const Where& w, uint64_t lo) {
    int64_t v = -1;
    if (w.node.is_integer()) {
        v = *w.node.value<int64_t>();
    } else if (w.node.is_string()) {
        try {
            v = parse_rate(get_string(w));
        } catch (const std::invalid_argument&) {
            v = -1;
        }
    }
    if (v < 0) w.fail("expected bytes or a size such as \"64MB\", \"1GiB\"");
    if (v < int64_t(lo) || v > 1'000'000'000'000) w.fail("must be between " + std::to_string(lo) + " bytes and 1TB");
    return uint64_t(v);
}

// { staff = "10MB", guests = "1Mbit" }
std::map<std::string, int64_t> get_group_rates(const Where& w) {
    const toml::table* t = w.node.as_table();
    if (!t) w.fail("expected a table of group = rate, e.g. { guests = \"1MB\" }");
    std::map<std::string, int64_t> out;
    for (const auto& [name, value] : *t) {
        Where at{w.file, value, w.key + "." + std::string(name.str())};
        if (name.str().empty()) at.fail("a group name cannot be empty");
        if (const int64_t r = get_rate(at)) out[std::string(name.str())] = r;
    }
    return out;
}

std::vector<Cidr> get_cidrs(const Where& w) {
    std::vector<Cidr> out;
    for (const auto& s : get_string_list(w)) {
        auto c = Cidr::parse(s);
        if (!c) w.fail("not an address or CIDR: \"" + s + "\"");
        out.push_back(*c);
    }
    return out;
}

std::vector<PortRange> get_ports(const Where& w) {
    const toml::array* arr = w.node.as_array();
    if (!arr) w.fail("expected an array of ports (443) or ranges (\"1024-65535\")");
    std::vector<PortRange> out;
    for (const auto& el : *arr) {
        std::optional<PortRange> r;
        if (auto i = el.value<int64_t>(); i && *i > 0 && *i <= 65535) r = PortRange{uint16_t(*i), uint16_t(*i)};
        else if (auto s = el.value<std::string>()) r = PortRange::parse(*s);
        if (!r) w.fail("expected ports 1-65535 or ranges like \"1024-65535\"");
        out.push_back(*r);
    }
    return out;
}

std::string get_url(const Where& w, bool templated) {
    std::string v = get_string(w);
    if (v.empty()) return v;
    if (v.rfind("https://", 0) != 0 && v.rfind("http://", 0) != 0) w.fail("expected an http:// or https:// URL");
    for (char c : v)
        if (static_cast<unsigned char>(c) <= ' ' || c == '"' || c == '<' || c == '>' || c == 0x7f)
            w.fail("the URL has a space, quote, angle bracket or control character");
    if (!templated && v.find('{') != std::string::npos) w.fail("no {placeholders} here");
    for (size_t at = v.find('{'); at != std::string::npos; at = v.find('{', at + 1)) {
        const std::string name = v.substr(at, v.find('}', at) - at + 1);
        if (name != "{url}" && name != "{category}" && name != "{transaction}")
            w.fail("unknown placeholder " + name + " (use {url}, {category} or {transaction})");
    }
    return v;
}

std::string get_logo(const Where& w) {
    const std::string path = get_path(w);
    if (path.empty()) return "";
    const size_t dot = path.rfind('.');
    const std::string ext = dot == std::string::npos ? "" : lower(path.substr(dot + 1));
    const char* type = ext == "png" ? "image/png" : ext == "jpg" || ext == "jpeg" ? "image/jpeg"
                       : ext == "gif" ? "image/gif" : ext == "svg" ? "image/svg+xml" : nullptr;
    if (!type) w.fail("the logo must be a .png, .jpg, .gif or .svg file");
    std::ifstream in(path, std::ios::binary);
    if (!in) w.fail("cannot read " + path);
    std::ostringstream bytes;
    bytes << in.rdbuf();
    if (bytes.str().size() > 64 * 1024) w.fail(path + " is larger than 64 KiB (pages inline it)");
    return std::string("data:") + type + ";base64," + core::base64(bytes.str());
}

std::map<std::string, std::shared_ptr<const core::Template>> get_page_templates(const Where& w) {
    namespace fs = std::filesystem;
    std::map<std::string, std::shared_ptr<const core::Template>> out;
    const std::string dir = get_path(w);
    if (dir.empty()) return out;
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) w.fail(dir + ": not a folder");
    const auto& known = page_template_names();
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(dir, ec)) files.push_back(entry.path());
    if (ec) w.fail(dir + ": cannot list: " + ec.message());
    std::sort(files.begin(), files.end());
    for (const auto& path : files) {
        if (path.extension() != ".html") continue;
        const std::string kind = path.stem().string();
        if (std::find(known.begin(), known.end(), kind) == known.end()) {
            std::string names;
            for (const auto& k : known) names += (names.empty() ? "" : ", ") + k + ".html";
            w.fail(path.string() + ": not a page Vigil knows (" + names + ")");
        }
        std::ifstream in(path, std::ios::binary);
        std::ostringstream text;
        text << in.rdbuf();
        if (!in) w.fail(path.string() + ": cannot read");
        if (text.str().size() > 256 * 1024) w.fail(path.string() + " is larger than 256 KiB");
        try {
            out[kind] = std::make_shared<const core::Template>(core::Template::parse(text.str(), page_variables()));
        } catch (const core::TemplateError& e) {
            w.fail(path.string() + ": " + e.what());
        }
    }
    if (out.empty()) w.fail(dir + ": no page templates in it (block.html, warn.html, ..., page.html)");
    return out;
}

}  // namespace vigil::config

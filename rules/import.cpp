// Import parsers. List formats only ever produce host entries (label-anchored) and, for UT1
// "urls" files, URL patterns built with RE2::QuoteMeta — never a regex taken from a list.
#include "rules/import.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <re2/re2.h>

namespace vigil::rules {
namespace {

namespace fs = std::filesystem;

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw RulesError(path + ": cannot read");
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string trim(std::string s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
    size_t i = 0;
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    return s.substr(i);
}

[[noreturn]] void fail_at(const std::string& path, int line, const std::string& msg) {
    throw RulesError(path + ":" + std::to_string(line) + ": " + msg);
}

void ensure_category(RuleData& d, const std::string& name) {
    for (const auto& c : d.categories)
        if (c.name == name) return;
    d.categories.push_back({name, ""});
}

// How one import reads its lines: strict or lenient, and where it reports.
struct Reader {
    bool lenient = false;
    ImportReport* report = nullptr;
    void used() {
        if (report) ++report->used;
    }
    void skipped(const std::string& file, int line, const std::string& reason, const std::string& text) {
        if (report) report->skip(file, line, reason, text);
    }
};

// A line of a list: the host pattern it names, or why it is skipped.
struct Extracted {
    std::string pattern;
    const char* skip = nullptr;
};

// Each line: one entry; '#' and '!' comments.
template <class Extract>
void parse_lines(const std::string& text, const std::string& path, RuleData& d, const std::string& category,
                 Extract extract, Reader& r) {
    std::istringstream in(text);
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
        line = trim(line);
        if (line.empty() || line[0] == '#' || line[0] == '!' || line[0] == '[') continue;
        const Extracted e = extract(line);
        if (e.skip) {
            r.skipped(path, n, e.skip, line);
            continue;
        }
        try {
            d.hosts.push_back({normalize_host_pattern(e.pattern), category});
            r.used();
        } catch (const RulesError& err) {
            if (!r.lenient) fail_at(path, n, err.what());
            r.skipped(path, n, "not a valid host name", line);
        }
    }
}

Extracted hosts_line(const std::string& line) {
    std::istringstream words(line);
    std::string addr, name;
    words >> addr >> name;
    if (name.empty()) return {"", "no host name after the address"};
    if (name == "localhost" || name.rfind("localhost.", 0) == 0 || name == "broadcasthost" || name == "0.0.0.0" ||
        name == "local" || name.find("ip6-") == 0)
        return {"", "a local name (localhost, broadcasthost, ip6-...)"};
    return {name};  // a hosts file names exact hosts
}

Extracted domain_line(const std::string& line) {
    std::string d = line.substr(0, line.find_first_of(" \t#"));
    if (d.rfind("*.", 0) == 0 || d.front() == '.') return {d};
    return {"." + d};  // a domain list means the domain and everything below it
}

Extracted adblock_line(const std::string& line) {
    // Only the host-blocking subset: "||example.com^" with nothing but options after it.
    if (line.rfind("@@", 0) == 0) return {"", "an Adblock exception (@@), not a host block"};
    if (line.find("##") != std::string::npos || line.find("#@#") != std::string::npos ||
        line.find("#?#") != std::string::npos)
        return {"", "a cosmetic (element-hiding) rule"};
    if (line.rfind("||", 0) != 0) return {"", "a URL or pattern rule, not a host block"};
    auto end = line.find('^');
    if (end == std::string::npos) return {"", "a URL or pattern rule, not a host block"};
    std::string rest = line.substr(end + 1);
    if (!rest.empty() && rest[0] != '$') return {"", "a URL or pattern rule, not a host block"};
    return {"." + line.substr(2, end - 2)};
}

std::vector<std::string> split_csv(const std::string& line, const std::string& path, int n) {
    std::vector<std::string> out;
    std::string cur;
    bool quoted = false;
    for (size_t i = 0; i < line.size(); ++i) {
        char c = line[i];
        if (quoted) {
            if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') cur += '"', ++i;
            else if (c == '"') quoted = false;
            else cur += c;
        } else if (c == '"') {
            quoted = true;
        } else if (c == ',') {
            out.push_back(cur);
            cur.clear();
        } else if (c != '\r') {
            cur += c;
        }
    }
    if (quoted) fail_at(path, n, "unterminated quoted field");
    out.push_back(cur);
    return out;
}

// The whole cell as an int ("12x" is not 12); std::logic_error otherwise.
int whole_int(const std::string& v) {
    size_t used = 0;
    const int n = std::stoi(v, &used);
    if (used != v.size()) throw std::invalid_argument(v);
    return n;
}

bool parse_bool(const std::string& v) { return v.empty() || v == "1" || v == "true" || v == "yes"; }

RuleData parse_csv(const std::string& text, const std::string& path, Reader& r) {
    std::istringstream in(text);
    std::string line;
    std::vector<std::string> header;
    RuleData d;
    for (int n = 1; std::getline(in, line); ++n) {
        if (trim(line).empty()) continue;
        auto cells = split_csv(line, path, n);
        if (header.empty()) {
            header = cells;
            if (std::find(header.begin(), header.end(), "kind") == header.end())
                fail_at(path, n, "the header row needs a \"kind\" column");
            continue;
        }
        if (cells.size() != header.size()) {
            const std::string why = "expected " + std::to_string(header.size()) + " fields, got " + std::to_string(cells.size());
            if (!r.lenient) fail_at(path, n, why);
            r.skipped(path, n, "a row with the wrong number of fields", line);
            continue;
        }
        std::map<std::string, std::string> f;
        for (size_t i = 0; i < header.size(); ++i) f[trim(header[i])] = cells[i];
        const std::string& kind = f["kind"];
        try {
            if (kind == "category") {
                d.categories.push_back({f["name"], f["description"]});
            } else if (kind == "host") {
                d.hosts.push_back({normalize_host_pattern(f["pattern"]), f["category"]});
            } else if (kind == "url") {
                d.url_patterns.push_back({f["pattern"], f["category"], f["description"], parse_bool(f["enabled"])});
            } else if (kind == "signature") {
                d.signatures.push_back({f["name"], f["target"], f["pattern"], f["action"].empty() ? "block" : f["action"],
                                        f["severity"].empty() ? "medium" : f["severity"], f["validator"],
                                        f["description"], parse_bool(f["enabled"])});
            } else if (kind == "policy") {
                d.policies.push_back({f["name"], f["priority"].empty() ? 100 : whole_int(f["priority"]),
                                      f["match_user"], f["match_group"], f["match_client_cidr"], f["match_category"],
                                      f["action"], parse_bool(f["enabled"])});
            } else {
                throw RulesError("unknown kind \"" + kind + "\" (category, host, url, signature, policy)");
            }
            r.used();
        } catch (const std::logic_error&) {  // std::stoi: not a number, or out of range
            if (!r.lenient) fail_at(path, n, "priority must be a number");
            r.skipped(path, n, "priority not a number", line);
        } catch (const RulesError& e) {
            if (!r.lenient) fail_at(path, n, e.what());
            r.skipped(path, n, "a row that is not a valid rule", line);
        }
    }
    return d;
}

// A UT1 "urls" file: "example.com/path" lines -> the URL on http or https, with or without
// www., anything after; the line is quoted, never taken as a regex.
void ut1_urls(const std::string& text, const std::string& name, RuleData& d, const std::string& category, Reader& r) {
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        line = trim(line);
        if (line.empty() || line[0] == '#') continue;
        d.url_patterns.push_back({"https?://(www\\.)?" + RE2::QuoteMeta(line) + ".*", category, "imported from " + name, true});
        r.used();
    }
}

// UT1 / squidGuard: DIR/<category>/domains and DIR/<category>/urls.
void parse_ut1(const std::string& dir, RuleData& d, const std::string& only_category, Reader& r) {
    if (!fs::is_directory(dir)) throw RulesError(dir + ": not a directory (UT1/squidGuard lists are folders)");
    auto import_one = [&](const fs::path& folder, const std::string& category) {
        bool any = false;
        if (fs::exists(folder / "domains")) {
            ensure_category(d, category);
            const std::string file = (folder / "domains").string();
            parse_lines(read_file(file), file, d, category, domain_line, r);
            any = true;
        }
        if (fs::exists(folder / "urls")) {
            ensure_category(d, category);
            ut1_urls(read_file((folder / "urls").string()), folder.filename().string() + "/urls", d, category, r);
            any = true;
        }
        return any;
    };
    if (fs::exists(fs::path(dir) / "domains") || fs::exists(fs::path(dir) / "urls")) {
        std::string cat = only_category.empty() ? fs::path(dir).filename().string() : only_category;
        import_one(dir, cat);
        return;
    }
    std::vector<fs::path> folders;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.is_directory()) folders.push_back(e.path());
    std::sort(folders.begin(), folders.end());
    bool any = false;
    for (const auto& f : folders) any = import_one(f, f.filename().string()) || any;
    if (!any) throw RulesError(dir + ": no category folders with domains or urls files");
}

}  // namespace

RuleData parse_import_text(const std::string& text, const std::string& name, const std::string& format,
                           const std::string& category, bool lenient, ImportReport* report) {
    Reader r{lenient, report};
    if (format == "json") return from_json(text);  // one document: valid whole, or refused
    if (format == "csv") return parse_csv(text, name, r);
    if (category.empty()) throw RulesError("--format " + format + " needs --category NAME");
    RuleData d;
    ensure_category(d, category);
    if (format == "hosts") parse_lines(text, name, d, category, hosts_line, r);
    else if (format == "domains") parse_lines(text, name, d, category, domain_line, r);
    else if (format == "adblock") parse_lines(text, name, d, category, adblock_line, r);
    else if (format == "ut1-urls") ut1_urls(text, name, d, category, r);
    else throw RulesError("unknown format \"" + format + "\" (json, csv, hosts, domains, adblock, ut1)");
    return d;
}

RuleData parse_import(const std::string& path, const ImportOptions& opts) {
    std::string format = opts.format;
    if (format.empty()) {
        std::string ext = fs::path(path).extension().string();
        if (ext == ".json") format = "json";
        else if (ext == ".csv") format = "csv";
        else if (fs::is_directory(path)) format = "ut1";
        else throw RulesError(path + ": cannot tell the format; give --format json|csv|hosts|domains|adblock|ut1");
    }
    if (format == "ut1") {
        RuleData d;
        Reader r{opts.lenient, opts.report};
        parse_ut1(path, d, opts.category, r);
        return d;
    }
    if (format == "ut1-urls") throw RulesError("unknown format \"ut1-urls\" (json, csv, hosts, domains, adblock, ut1)");
    return parse_import_text(read_file(path), path, format, opts.category, opts.lenient, opts.report);
}

void ImportReport::skip(const std::string& file, int line, const std::string& reason, const std::string& text) {
    ++skipped[reason];
    if (examples.size() < 5)
        examples.push_back(file + ":" + std::to_string(line) + ": " + reason + ": " + text.substr(0, 120));
}

size_t ImportReport::skipped_total() const {
    size_t n = 0;
    for (const auto& [reason, count] : skipped) n += count;
    return n;
}

}  // namespace vigil::rules

// Import formats: native JSON, CSV, and the public list formats (hosts files, plain domain
// lists, Adblock-style "||domain^" lines, UT1/squidGuard category folders).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "rules/model.hpp"

namespace vigil::rules {

// What an import did with the lines of a list or CSV file: used, or skipped and why.
struct ImportReport {
    size_t used = 0;
    std::map<std::string, size_t> skipped;  // reason -> lines
    std::vector<std::string> examples;      // the first few skipped lines, "file:line: reason: text"
    void skip(const std::string& file, int line, const std::string& reason, const std::string& text);
    size_t skipped_total() const;
};

struct ImportOptions {
    std::string format;    // json, csv, hosts, domains, adblock, ut1; "" = from the file name
    std::string category;  // for list formats: the category the entries go into
    // Lines that cannot be used (a bad host name, a malformed CSV row) are skipped and counted
    // instead of refusing the file. Lines that are not rules of this kind (comments, Adblock
    // exceptions and cosmetic rules, local names in a hosts file) are always skipped, counted.
    bool lenient = false;
    ImportReport* report = nullptr;  // filled when given
};

// Parses the file into rules (nothing is written). Throws RulesError naming file:line.
RuleData parse_import(const std::string& path, const ImportOptions& opts);

// The same parsers on text in memory (`name` is for messages): json, csv, hosts, domains,
// adblock, and "ut1-urls" for one UT1 urls file.
RuleData parse_import_text(const std::string& text, const std::string& name, const std::string& format,
                           const std::string& category, bool lenient = false, ImportReport* report = nullptr);

}  // namespace vigil::rules

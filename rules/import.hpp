// Import formats: native JSON, CSV, and the public list formats (hosts files, plain domain
// lists, Adblock-style "||domain^" lines, UT1/squidGuard category folders).
#pragma once

#include <string>

#include "rules/model.hpp"

namespace vigil::rules {

struct ImportOptions {
    std::string format;    // json, csv, hosts, domains, adblock, ut1; "" = from the file name
    std::string category;  // for list formats: the category the entries go into
};

// Parses the file into rules (nothing is written). Throws RulesError naming file:line.
RuleData parse_import(const std::string& path, const ImportOptions& opts);

// The same parsers on text in memory (`name` is for messages): json, csv, hosts, domains,
// adblock, and "ut1-urls" for one UT1 urls file.
RuleData parse_import_text(const std::string& text, const std::string& name, const std::string& format,
                           const std::string& category);

}  // namespace vigil::rules

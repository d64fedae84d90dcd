// Fuzz target: the list import parsers — CSV, hosts files, plain domain lists, Adblock lines
// and UT1 urls files (the first byte picks the format) — then what an import does next:
// validation of every rule and compiling the result into a RuleSet.
#include "inspect/ruleset.hpp"
#include "rules/import.hpp"
#include "rules/model.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const char* const kFormats[] = {"csv", "hosts", "domains", "adblock", "ut1-urls"};
    if (size == 0) return 0;
    const std::string format = kFormats[data[0] % 5];
    const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
    try {
        vigil::rules::RuleData d = vigil::rules::parse_import_text(text, "fuzz", format, "fuzzed");
        for (const auto& s : d.signatures) vigil::rules::validate(s);
        for (const auto& u : d.url_patterns) vigil::rules::validate(u);
        for (const auto& p : d.policies) vigil::rules::validate(p);
        auto rs = vigil::inspect::RuleSet::compile(d, {});
        rs->host_category("www.example.com");
    } catch (const vigil::rules::RulesError&) {
    }
    return 0;
}

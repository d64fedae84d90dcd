// Fuzz target: the native JSON rule format and every pattern check an import runs, then
// compiling the result into a RuleSet and scanning a body with it.
#include "inspect/ruleset.hpp"
#include "rules/model.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string text(reinterpret_cast<const char*>(data), size);
    try {
        vigil::rules::RuleData d = vigil::rules::from_json(text);
        for (const auto& s : d.signatures) vigil::rules::validate(s);
        for (const auto& u : d.url_patterns) vigil::rules::validate(u);
        for (const auto& p : d.policies) vigil::rules::validate(p);
        auto rs = vigil::inspect::RuleSet::compile(d, {});
        auto scan = rs->scan_body(vigil::inspect::Target::response_body, "gzip, br");
        scan->feed(text);
        rs->host_category("a.b.example.com");
    } catch (const vigil::rules::RulesError&) {
    }
    return 0;
}

// The compiled-signature cache kept in the rule database (RuleDb::compiled): the gateway reads
// it; vigil-rules, which writes the rules, also writes what it compiled for them.
#pragma once

#include "inspect/signature_matcher.hpp"
#include "rules/db.hpp"

namespace vigil::inspect {

class RuleDbCache : public CompiledCache {
public:
    RuleDbCache(rules::RuleDb& db, bool writable) : db_(db), writable_(writable) {}
    std::optional<std::string> load(const std::string& key) const override {
        try {
            return db_.compiled(key);
        } catch (const rules::RulesError&) {
            return std::nullopt;  // an unreadable entry is compiled again
        }
    }
    void store(const std::string& key, const std::string& data) const override {
        if (writable_ && !data.empty()) db_.put_compiled(key, data);
    }

private:
    rules::RuleDb& db_;
    bool writable_;
};

}  // namespace vigil::inspect

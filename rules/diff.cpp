// Ruleset diffs, computed on the canonical JSON form (rules/model.cpp: to_json), by key.
#include "rules/diff.hpp"

#include <map>

#include <nlohmann/json.hpp>

namespace vigil::rules {
namespace {

using json = nlohmann::json;

struct KindKey {
    const char* array;  // in to_json's output
    const char* kind;   // as vigil-rules names it
    const char* key;    // the field that identifies a rule
};
constexpr KindKey kKinds[] = {{"categories", "category", "name"},
                              {"hosts", "host", "pattern"},
                              {"url_patterns", "url", "pattern"},
                              {"signatures", "signature", "name"},
                              {"policies", "policy", "name"}};

std::string value_text(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

// "field value, field value" for the fields other than the key (nested objects flattened).
std::string fields(const json& o, const std::string& key) {
    std::string out;
    for (auto it = o.begin(); it != o.end(); ++it) {
        if (it.key() == key) continue;
        if (it->is_object()) {
            for (auto in = it->begin(); in != it->end(); ++in)
                if (!(in->is_string() && in->get<std::string>().empty()))
                    out += (out.empty() ? "" : ", ") + it.key() + "." + in.key() + " " + value_text(*in);
            continue;
        }
        if (it->is_string() && it->get<std::string>().empty()) continue;
        out += (out.empty() ? "" : ", ") + it.key() + " " + value_text(*it);
    }
    return out;
}

std::string changed_fields(const json& a, const json& b) {
    std::string out;
    for (auto it = b.begin(); it != b.end(); ++it) {
        const json& old = a.contains(it.key()) ? a[it.key()] : json();
        if (old == *it) continue;
        out += (out.empty() ? "" : ", ") + it.key() + ": " + value_text(old) + " -> " + value_text(*it);
    }
    return out;
}

}  // namespace

std::vector<RuleChange> diff(const RuleData& from, const RuleData& to) {
    const json a = json::parse(to_json(from)), b = json::parse(to_json(to));
    std::vector<RuleChange> out;
    for (const auto& k : kKinds) {
        std::map<std::string, json> before, after;
        for (const auto& o : a[k.array]) before[o[k.key].get<std::string>()] = o;
        for (const auto& o : b[k.array]) after[o[k.key].get<std::string>()] = o;
        for (const auto& [key, o] : before)
            if (!after.count(key)) out.push_back({'-', k.kind, key, ""});
        for (const auto& [key, o] : after) {
            auto old = before.find(key);
            if (old == before.end()) out.push_back({'+', k.kind, key, fields(o, k.key)});
            else if (old->second != o) out.push_back({'~', k.kind, key, changed_fields(old->second, o)});
        }
    }
    return out;
}

std::string describe(const RuleChange& c) {
    return std::string(1, c.op) + " " + c.kind + " " + c.key + (c.detail.empty() ? "" : ": " + c.detail);
}

}  // namespace vigil::rules

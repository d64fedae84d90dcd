// Rule validation and the native JSON format.
#include "rules/model.hpp"

#include <algorithm>
#include <cctype>

#include <nlohmann/json.hpp>
#include <re2/re2.h>

namespace vigil::rules {
namespace {

using json = nlohmann::ordered_json;

bool one_of(const std::string& v, const std::vector<std::string>& allowed) {
    return std::find(allowed.begin(), allowed.end(), v) != allowed.end();
}

std::string list(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) {
        if (s.empty()) continue;
        out += (out.empty() ? "" : ", ") + s;
    }
    return out;
}

void check_re2(const std::string& what, const std::string& pattern) {
    if (pattern.empty()) throw RulesError(what + ": empty pattern");
    RE2::Options opts;
    opts.set_log_errors(false);
    RE2 re(pattern, opts);
    if (!re.ok()) throw RulesError(what + ": invalid RE2 pattern \"" + pattern + "\": " + re.error());
}

template <class T>
T get(const json& j, const char* key, T def) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return def;
    return it->template get<T>();
}

}  // namespace

std::string normalize_host_pattern(const std::string& raw) {
    std::string p = raw;
    std::transform(p.begin(), p.end(), p.begin(), [](unsigned char c) { return std::tolower(c); });
    while (!p.empty() && std::isspace(static_cast<unsigned char>(p.back()))) p.pop_back();
    while (!p.empty() && std::isspace(static_cast<unsigned char>(p.front()))) p.erase(p.begin());
    if (!p.empty() && p.back() == '.') p.pop_back();
    std::string body = p;
    if (body.rfind("*.", 0) == 0) body = body.substr(2);
    else if (!body.empty() && body.front() == '.') body = body.substr(1);
    bool ok = !body.empty() && body.size() <= 253 && body.front() != '.' && body.find("..") == std::string::npos;
    for (char c : body)
        ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' || c == ':');
    if (!ok) throw RulesError("host pattern \"" + raw + "\": expected example.com, *.example.com or .example.com");
    return p;
}

void validate(const Signature& s) {
    std::string what = "signature \"" + s.name + "\"";
    if (s.name.empty()) throw RulesError("signature without a name");
    if (!one_of(s.target, signature_targets()))
        throw RulesError(what + ": target must be one of " + list(signature_targets()));
    if (!one_of(s.action, signature_actions()))
        throw RulesError(what + ": action must be one of " + list(signature_actions()));
    if (!one_of(s.severity, severities())) throw RulesError(what + ": severity must be one of " + list(severities()));
    if (!one_of(s.validator, validators())) throw RulesError(what + ": validator must be one of " + list(validators()));
    check_re2(what, s.pattern);
}

void validate(const UrlPattern& u) {
    if (u.category.empty()) throw RulesError("URL pattern \"" + u.pattern + "\": no category");
    check_re2("URL pattern", u.pattern);
}

void validate(const Policy& p) {
    std::string what = "policy \"" + p.name + "\"";
    if (p.name.empty()) throw RulesError("policy without a name");
    if (!one_of(p.action, policy_actions())) throw RulesError(what + ": action must be one of " + list(policy_actions()));
}

std::string to_json(const RuleData& d) {
    json j;
    j["format"] = "vigil-rules/1";
    json meta = json::object();
    for (const auto& [k, v] : d.meta)
        if (k != "version" && k != "updated") meta[k] = v;
    j["meta"] = meta;
    auto cats = d.categories;
    std::sort(cats.begin(), cats.end(), [](auto& a, auto& b) { return a.name < b.name; });
    j["categories"] = json::array();
    for (const auto& c : cats) j["categories"].push_back({{"name", c.name}, {"description", c.description}});
    auto hosts = d.hosts;
    std::sort(hosts.begin(), hosts.end(), [](auto& a, auto& b) { return a.pattern < b.pattern; });
    j["hosts"] = json::array();
    for (const auto& h : hosts) j["hosts"].push_back({{"pattern", h.pattern}, {"category", h.category}});
    auto urls = d.url_patterns;
    std::sort(urls.begin(), urls.end(), [](auto& a, auto& b) { return a.pattern < b.pattern; });
    j["url_patterns"] = json::array();
    for (const auto& u : urls)
        j["url_patterns"].push_back({{"pattern", u.pattern}, {"category", u.category},
                                     {"description", u.description}, {"enabled", u.enabled}});
    auto sigs = d.signatures;
    std::sort(sigs.begin(), sigs.end(), [](auto& a, auto& b) { return a.name < b.name; });
    j["signatures"] = json::array();
    for (const auto& s : sigs)
        j["signatures"].push_back({{"name", s.name}, {"target", s.target}, {"pattern", s.pattern},
                                   {"action", s.action}, {"severity", s.severity}, {"validator", s.validator},
                                   {"enabled", s.enabled}, {"description", s.description}});
    auto pols = d.policies;
    std::sort(pols.begin(), pols.end(),
              [](auto& a, auto& b) { return std::tie(a.priority, a.name) < std::tie(b.priority, b.name); });
    j["policies"] = json::array();
    for (const auto& p : pols)
        j["policies"].push_back({{"name", p.name}, {"priority", p.priority},
                                 {"match", {{"user", p.match_user}, {"group", p.match_group},
                                            {"client_cidr", p.match_client_cidr}, {"category", p.match_category}}},
                                 {"action", p.action}, {"enabled", p.enabled}});
    return j.dump(2) + "\n";
}

RuleData from_json(const std::string& text) {
    json j;
    try {
        j = json::parse(text);
    } catch (const json::parse_error& e) {
        throw RulesError(std::string("not valid JSON: ") + e.what());
    }
    if (!j.is_object()) throw RulesError("expected a JSON object with \"format\": \"vigil-rules/1\"");
    if (get<std::string>(j, "format", "") != "vigil-rules/1")
        throw RulesError("unknown format; expected \"format\": \"vigil-rules/1\"");
    RuleData d;
    try {
        if (j.contains("meta"))
            for (auto& [k, v] : j["meta"].items())
                if (k != "version" && k != "updated") d.meta[k] = v.get<std::string>();
        for (const auto& c : j.value("categories", json::array()))
            d.categories.push_back({c.at("name").get<std::string>(), get<std::string>(c, "description", "")});
        for (const auto& h : j.value("hosts", json::array()))
            d.hosts.push_back({normalize_host_pattern(h.at("pattern").get<std::string>()),
                               h.at("category").get<std::string>()});
        for (const auto& u : j.value("url_patterns", json::array()))
            d.url_patterns.push_back({u.at("pattern").get<std::string>(), u.at("category").get<std::string>(),
                                      get<std::string>(u, "description", ""), get<bool>(u, "enabled", true)});
        for (const auto& s : j.value("signatures", json::array()))
            d.signatures.push_back({s.at("name").get<std::string>(), s.at("target").get<std::string>(),
                                    s.at("pattern").get<std::string>(), get<std::string>(s, "action", "block"),
                                    get<std::string>(s, "severity", "medium"), get<std::string>(s, "validator", ""),
                                    get<std::string>(s, "description", ""), get<bool>(s, "enabled", true)});
        for (const auto& p : j.value("policies", json::array())) {
            json m = p.value("match", json::object());
            d.policies.push_back({p.at("name").get<std::string>(), get<int>(p, "priority", 100),
                                  get<std::string>(m, "user", ""), get<std::string>(m, "group", ""),
                                  get<std::string>(m, "client_cidr", ""), get<std::string>(m, "category", ""),
                                  p.at("action").get<std::string>(), get<bool>(p, "enabled", true)});
        }
    } catch (const json::exception& e) {
        throw RulesError(std::string("invalid rules file: ") + e.what());
    }
    return d;
}

}  // namespace vigil::rules

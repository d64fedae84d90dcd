// RuleSet compilation and matching. Hosts are matched label by label from the right through
// hash maps (never a regex); URL patterns are RE2 anchored at both ends; signatures are one
// SignatureMatcher per target whose errors are verdicts, never a silent "no match".
#include "inspect/ruleset.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <set>

#include <re2/re2.h>
#include <re2/set.h>

#include "inspect/signature_matcher.hpp"
#include "inspect/set_match.hpp"
#include "inspect/validators.hpp"
#include "rules/password.hpp"

namespace vigil::inspect {

const char* action_name(Action a) {
    switch (a) {
        case Action::allow: return "allow";
        case Action::monitor: return "monitor";
        case Action::warn: return "warn";
        case Action::block: return "block";
    }
    return "?";
}

void Verdict::merge(const Verdict& o) {
    for (const auto& m : o.monitored)
        if (std::find(monitored.begin(), monitored.end(), m) == monitored.end()) monitored.push_back(m);
    error = error || o.error;
    if (o.action > action) {
        action = o.action;
        rule = o.rule;
        rule_kind = o.rule_kind;
        reason = o.reason;
        if (!o.category.empty()) category = o.category;
    }
}

namespace {

std::optional<Action> to_action(const std::string& a) {
    if (a == "allow") return Action::allow;
    if (a == "monitor") return Action::monitor;
    if (a == "warn") return Action::warn;
    if (a == "block") return Action::block;
    return std::nullopt;
}

struct Network {
    int family = 0;
    std::array<unsigned char, 16> addr{};
    unsigned prefix = 0;
    static std::optional<Network> parse(const std::string& text) {
        Network n;
        auto slash = text.find('/');
        std::string a = text.substr(0, slash);
        if (inet_pton(AF_INET, a.c_str(), n.addr.data()) == 1) n.family = AF_INET, n.prefix = 32;
        else if (inet_pton(AF_INET6, a.c_str(), n.addr.data()) == 1) n.family = AF_INET6, n.prefix = 128;
        else return std::nullopt;
        if (slash != std::string::npos) {
            try {
                unsigned p = static_cast<unsigned>(std::stoul(text.substr(slash + 1)));
                if (p > n.prefix) return std::nullopt;
                n.prefix = p;
            } catch (const std::exception&) {
                return std::nullopt;
            }
        }
        return n;
    }
    bool contains(const std::string& ip) const {
        std::array<unsigned char, 16> b{};
        int fam = inet_pton(AF_INET, ip.c_str(), b.data()) == 1 ? AF_INET
                  : inet_pton(AF_INET6, ip.c_str(), b.data()) == 1 ? AF_INET6 : 0;
        if (fam != family) return false;
        unsigned bits = prefix;
        for (size_t i = 0; bits > 0; ++i, bits = bits >= 8 ? bits - 8 : 0) {
            unsigned char mask = bits >= 8 ? 0xff : static_cast<unsigned char>(0xff << (8 - bits));
            if ((addr[i] & mask) != (b[i] & mask)) return false;
        }
        return true;
    }
};

struct CompiledPolicy {
    rules::Policy def;
    std::optional<Network> net;
};

struct CompiledSig {
    rules::Signature def;
    Action action = Action::block;
};

// The signatures of one target, matched together (signature_matcher.hpp: Hyperscan finds the
// places, RE2 confirms), with what a match needs besides: validators and whether it blocks.
struct SigGroup {
    std::unique_ptr<SignatureMatcher> matcher;
    std::vector<const CompiledSig*> sigs;  // by id
    SignatureMatcher::Hooks hooks;
};

// A match of a signature with a validator counts only when the validator takes it.
bool validator_accepts(const void* group, int id, std::string_view match) {
    const auto& g = *static_cast<const SigGroup*>(group);
    return run_validator(g.sigs[static_cast<size_t>(id)]->def.validator, match);
}

RE2::Options re2_options(int64_t max_mem) {
    RE2::Options o;
    o.set_log_errors(false);
    o.set_encoding(RE2::Options::EncodingLatin1);  // bodies are bytes, not necessarily UTF-8
    o.set_max_mem(max_mem);
    return o;
}

}  // namespace

struct RuleSet::Impl {
    std::unordered_map<std::string, std::string> exact;    // host -> category
    std::unordered_map<std::string, std::string> subtree;  // parent -> category (for names below it)
    std::unique_ptr<RE2::Set> urls;
    std::vector<std::string> url_categories;
    std::vector<CompiledPolicy> policies;
    std::vector<std::unique_ptr<CompiledSig>> sigs;
    std::array<SigGroup, 5> groups;
    rules::UserStore users;  // proxy sign-in (rules/password.hpp)
};

RuleSet::~RuleSet() = default;

std::shared_ptr<const RuleSet> RuleSet::empty(const InspectOptions& opts) {
    return compile(rules::RuleData{}, opts);
}

std::shared_ptr<const RuleSet> RuleSet::compile(const rules::RuleData& data, const InspectOptions& opts) {
    std::shared_ptr<RuleSet> rs(new RuleSet());
    rs->impl_ = std::make_unique<Impl>();
    rs->opts_ = opts;
    rs->opts_.compiled = nullptr;
    rs->version_ = data.version;
    Impl& im = *rs->impl_;

    // Exact names first, then subtree patterns: a more specific entry is never overwritten.
    for (const auto& h : data.hosts) {
        std::string p = rules::normalize_host_pattern(h.pattern);
        if (p[0] != '*' && p[0] != '.') im.exact[p] = h.category;
    }
    for (const auto& h : data.hosts) {
        std::string p = rules::normalize_host_pattern(h.pattern);
        if (p[0] == '*') im.subtree.emplace(p.substr(2), h.category);
        else if (p[0] == '.') {
            im.subtree.emplace(p.substr(1), h.category);
            im.exact.emplace(p.substr(1), h.category);
        }
    }
    rs->host_count_ = data.hosts.size();
    im.users = rules::UserStore(data.users);

    RE2::Options ro = re2_options(opts.re2_max_mem);
    im.urls = std::make_unique<RE2::Set>(ro, RE2::ANCHOR_BOTH);
    for (const auto& u : data.url_patterns) {
        if (!u.enabled) continue;
        std::string err;
        if (im.urls->Add(u.pattern, &err) < 0)
            throw rules::RulesError("URL pattern \"" + u.pattern + "\": invalid RE2 pattern: " + err);
        im.url_categories.push_back(u.category);
    }
    if (!im.urls->Compile()) throw rules::RulesError("URL patterns: RE2 ran out of memory compiling them");

    for (const auto& p : data.policies) {
        if (!p.enabled) continue;
        CompiledPolicy cp{p, std::nullopt};
        if (!p.match_client_cidr.empty()) {
            cp.net = Network::parse(p.match_client_cidr);
            if (!cp.net) throw rules::RulesError("policy \"" + p.name + "\": bad client CIDR \"" + p.match_client_cidr + "\"");
        }
        im.policies.push_back(std::move(cp));
    }
    std::stable_sort(im.policies.begin(), im.policies.end(),
                     [](const auto& a, const auto& b) { return a.def.priority < b.def.priority; });

    std::array<std::vector<const rules::Signature*>, 5> by_target;
    for (const auto& s : data.signatures) {
        if (!s.enabled) continue;
        rules::validate(s);
        auto t = std::find(rules::signature_targets().begin(), rules::signature_targets().end(), s.target) -
                 rules::signature_targets().begin();
        by_target[static_cast<size_t>(t)].push_back(&s);
    }
    SignatureMatcher::Options mo;
    mo.re2_max_mem = std::min<int64_t>(opts.re2_max_mem, 8 << 20);
    mo.cache = opts.compiled;
    for (size_t t = 0; t < by_target.size(); ++t) {
        SigGroup& g = im.groups[t];
        if (by_target[t].empty()) continue;
        std::vector<std::string> patterns;
        for (const rules::Signature* s : by_target[t]) {
            auto cs = std::make_unique<CompiledSig>();
            cs->def = *s;
            cs->action = to_action(s->action).value_or(Action::block);
            patterns.push_back(s->pattern);
            g.hooks.validated.push_back(!s->validator.empty());
            g.hooks.stop.push_back(cs->action == Action::block);
            g.sigs.push_back(cs.get());
            im.sigs.push_back(std::move(cs));
        }
        g.hooks.accept = validator_accepts;
        g.hooks.ctx = &g;
        try {
            g.matcher = std::make_unique<SignatureMatcher>(patterns, mo);
        } catch (const std::invalid_argument& e) {
            const std::string what = e.what();
            const size_t id = std::stoul(what.substr(0, what.find(':')));
            throw rules::RulesError("signature \"" + g.sigs[id]->def.name + "\": invalid RE2 pattern \"" +
                                    g.sigs[id]->def.pattern + "\": " + what.substr(what.find(':') + 2));
        } catch (const std::runtime_error& e) {
            throw rules::RulesError("signatures for " + rules::signature_targets()[t] + ": " + e.what());
        }
    }
    return rs;
}

size_t RuleSet::signature_count() const { return impl_->sigs.size(); }

std::vector<std::string> RuleSet::re2_only_signatures() const {
    std::vector<std::string> out;
    for (const SigGroup& g : impl_->groups)
        if (g.matcher)
            for (int id : g.matcher->re2_only()) out.push_back(g.sigs[static_cast<size_t>(id)]->def.name);
    return out;
}

std::optional<std::vector<std::string>> RuleSet::authenticate(const std::string& user, const std::string& password) const {
    return impl_->users.authenticate(user, password);
}

std::vector<std::string> RuleSet::local_groups(const std::string& user) const { return impl_->users.groups_of(user); }

std::string RuleSet::host_category(std::string_view host_in) const {
    std::string host(host_in);
    std::transform(host.begin(), host.end(), host.begin(), [](unsigned char c) { return std::tolower(c); });
    if (!host.empty() && host.back() == '.') host.pop_back();
    if (auto it = impl_->exact.find(host); it != impl_->exact.end()) return it->second;
    // Parents from the most specific: a.b.example.com -> b.example.com -> example.com -> com.
    for (size_t dot = host.find('.'); dot != std::string::npos; dot = host.find('.', dot + 1)) {
        if (auto it = impl_->subtree.find(host.substr(dot + 1)); it != impl_->subtree.end()) return it->second;
    }
    return "";
}

Verdict RuleSet::policy_verdict(const Subject& s, const std::vector<std::string>& categories) const {
    for (const auto& p : impl_->policies) {
        const auto& d = p.def;
        if (!d.match_user.empty() && d.match_user != s.user) continue;
        if (!d.match_group.empty() && std::find(s.groups.begin(), s.groups.end(), d.match_group) == s.groups.end())
            continue;
        if (p.net && !p.net->contains(s.client_ip)) continue;
        if (!d.match_category.empty() &&
            std::find(categories.begin(), categories.end(), d.match_category) == categories.end())
            continue;
        Verdict v;
        v.rule = d.name;
        v.rule_kind = "policy";
        v.category = d.match_category.empty() ? (categories.empty() ? "" : categories.front()) : d.match_category;
        if (d.action == "bypass_inspection") {
            v.bypass = true;
            v.reason = "inspection is bypassed for " + (v.category.empty() ? "this site" : "category " + v.category);
            return v;
        }
        v.action = to_action(d.action).value_or(Action::block);
        v.reason = v.category.empty() ? "policy " + d.name : "category " + v.category + " (policy " + d.name + ")";
        return v;
    }
    Verdict v;
    v.category = categories.empty() ? "" : categories.front();
    return v;
}

namespace {

// The fields as header signatures see them, "name: value\n" each, built in one allocation.
std::string header_text(const Headers& headers) {
    size_t size = 0;
    for (const auto& [k, val] : headers) size += k.size() + val.size() + 3;
    std::string text;
    text.reserve(size);
    for (const auto& [k, val] : headers) text.append(k).append(": ").append(val).push_back('\n');
    return text;
}

}  // namespace

Verdict RuleSet::check_connect(const Subject& s) const {
    std::vector<std::string> cats;
    if (auto c = host_category(s.host); !c.empty()) cats.push_back(c);
    return policy_verdict(s, cats);
}

Verdict RuleSet::check_request(const Subject& s, const Headers& headers) const {
    std::vector<std::string> cats;
    std::vector<int> hits;
    // The URL pattern, being more specific than the host, comes first.
    SetMatch url_match = impl_->url_categories.empty() ? SetMatch::none : match_set(*impl_->urls, s.url, &hits);
    if (url_match == SetMatch::matched && !hits.empty())
        cats.push_back(impl_->url_categories[static_cast<size_t>(*std::min_element(hits.begin(), hits.end()))]);
    if (auto c = host_category(s.host); !c.empty() && std::find(cats.begin(), cats.end(), c) == cats.end())
        cats.push_back(c);
    Verdict v = policy_verdict(s, cats);
    if (url_match == SetMatch::error) v.merge(matcher_error_verdict(opts_.error_block));
    if (v.bypass) return v;
    match_signatures(Target::url, s.url, v);
    match_signatures(Target::request_header, header_text(headers), v);
    return v;
}

Verdict RuleSet::check_response_headers(const Subject&, const Headers& headers) const {
    Verdict v;
    match_signatures(Target::response_header, header_text(headers), v);
    return v;
}

MatchStatus RuleSet::match_signatures(Target target, std::string_view text, Verdict& v, size_t seen,
                                      std::vector<bool>* known, std::chrono::steady_clock::time_point deadline) const {
    const SigGroup& g = impl_->groups[static_cast<size_t>(target)];
    if (g.sigs.empty()) return MatchStatus::done;
    thread_local SignatureMatcher::Scan scan;  // its vector kept per thread: cleared, not allocated
    if (known) known->resize(g.sigs.size());
    g.matcher->scan(text, seen, scan, &g.hooks, known, deadline);
    if (known)
        for (int id : scan.hits) (*known)[static_cast<size_t>(id)] = true;
    if (scan.error) {
        v.merge(matcher_error_verdict(opts_.error_block));
        return MatchStatus::error;
    }
    for (int idx : scan.hits) {
        const CompiledSig& sig = *g.sigs[static_cast<size_t>(idx)];
        Verdict s;
        s.rule = sig.def.name;
        s.rule_kind = "signature";
        s.action = sig.action;
        s.reason = (sig.def.description.empty() ? "signature " + sig.def.name : sig.def.description) + " (" +
                   rules::signature_targets()[static_cast<size_t>(target)] + ")";
        if (sig.action == Action::monitor) s.monitored.push_back(sig.def.name);
        v.merge(s);
    }
    return scan.out_of_time ? MatchStatus::out_of_time : MatchStatus::done;
}

}  // namespace vigil::inspect

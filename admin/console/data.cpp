// The console's reads: the audit log through its own SQL (the filters are vigil-audit's, bound,
// never spliced), the roll-ups through Store::stats, the rules through RuleDb and RuleSet.
#include "admin/console/data.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <ctime>

#include "audit/filter.hpp"
#include "audit/record.hpp"
#include "audit/schema.hpp"
#include "inspect/compiled_cache.hpp"
#include "inspect/ruleset.hpp"
#include "tls/ca.hpp"

namespace vigil::console {
namespace {

using nlohmann::json;

json top(const std::map<std::string, audit::StatRow>& rows, bool by_blocked, size_t n) {
    std::vector<std::pair<std::string, audit::StatRow>> v(rows.begin(), rows.end());
    v.erase(std::remove_if(v.begin(), v.end(),
                           [&](const auto& x) { return x.first.empty() || (by_blocked && x.second.blocked == 0); }),
            v.end());
    std::stable_sort(v.begin(), v.end(), [&](const auto& a, const auto& b) {
        return by_blocked ? a.second.blocked > b.second.blocked : a.second.count > b.second.count;
    });
    json out = json::array();
    for (size_t i = 0; i < v.size() && i < n; ++i)
        out.push_back({{"key", v[i].first}, {"count", v[i].second.count}, {"blocked", v[i].second.blocked}});
    return out;
}

std::string select_records() {
    return "SELECT id, " + audit::schema::columns_list() + " FROM records";
}

json row_json(const audit::schema::Stmt& st) {
    std::vector<std::string> vals;
    for (size_t i = 0; i < audit::record_columns().size(); ++i) vals.push_back(st.text(int(1 + i)));
    return json::parse(audit::to_json(st.integer(0), audit::record_from_values(vals)));
}

std::string days_left(X509* cert) {
    int days = 0, secs = 0;
    if (!cert || !ASN1_TIME_diff(&days, &secs, nullptr, X509_get0_notAfter(cert))) return "";
    return std::to_string(days);
}

json cert_json(X509* cert) {
    return {{"subject", tls::subject_text(cert)},
            {"not_after", tls::not_after(cert)},
            {"days_left", days_left(cert)},
            {"sha256", tls::fingerprint(cert, EVP_sha256())},
            {"sha1", tls::fingerprint(cert, EVP_sha1())}};
}

}  // namespace

json overview(const audit::Store& store, int64_t since_ms, int64_t now_ms) {
    json out;
    json actions = json::object();
    int64_t total = 0, bytes_in = 0, bytes_out = 0;
    for (const auto& [action, row] : store.stats("action", since_ms, now_ms + 1)) {
        actions[action.empty() ? "allow" : action] = row.count;
        total += row.count;
        bytes_in += row.bytes_in;
        bytes_out += row.bytes_out;
    }
    out["actions"] = actions;
    out["requests"] = total;
    out["bytes_in"] = bytes_in;
    out["bytes_out"] = bytes_out;
    json series = json::array();
    for (const auto& [hour, row] : store.stats("hour", since_ms, now_ms + 1))
        series.push_back({{"hour", std::stoll(hour) * 3600000}, {"count", row.count}, {"blocked", row.blocked},
                          {"bytes", row.bytes_in + row.bytes_out}});
    out["series"] = series;
    out["top_categories"] = top(store.stats("category", since_ms, now_ms + 1), false, 10);
    out["top_blocked_hosts"] = top(store.stats("host", since_ms, now_ms + 1), true, 10);
    out["top_users"] = top(store.stats("user", since_ms, now_ms + 1), false, 10);
    json errors = json::array();
    audit::schema::Stmt cert(store.db(),
                             "SELECT origin_cert, count(*) FROM records WHERE ts_ms >= ? AND ts_ms <= ? AND origin_cert "
                             "NOT IN ('', 'ok') AND instr(origin_cert, ' ') = 0 GROUP BY 1 ORDER BY 2 DESC LIMIT 20");
    cert.bind(1, since_ms).bind(2, now_ms);
    while (cert.step()) errors.push_back({{"reason", cert.text(0)}, {"count", cert.integer(1)}});
    out["origin_cert_errors"] = errors;
    int64_t hits = 0, lookups = 0;
    audit::schema::Stmt cache(store.db(), "SELECT cache, count(*) FROM records WHERE ts_ms >= ? AND ts_ms <= ? AND "
                                          "cache <> '' GROUP BY 1");
    cache.bind(1, since_ms).bind(2, now_ms);
    while (cache.step()) {
        lookups += cache.integer(1);
        if (cache.text(0) != "MISS") hits += cache.integer(1);
    }
    out["cache_hits"] = hits;
    out["cache_lookups"] = lookups;
    return out;
}

std::map<std::string, std::string> audit_filters(const std::map<std::string, std::string>& form) {
    static const char* keys[] = {"since", "until", "user", "group", "host", "category", "action", "rule", "status", "txid",
                                 "kind", "client"};
    std::map<std::string, std::string> out;
    for (const char* k : keys)
        if (auto it = form.find(k); it != form.end() && !it->second.empty()) out[std::string("--") + k] = it->second;
    return out;
}

json audit_page(const audit::Store& store, const std::map<std::string, std::string>& filters, int page, int64_t now_ms) {
    constexpr int kPage = 50;
    audit::Where w = audit::build_filters(filters, now_ms);
    audit::schema::Stmt st(store.db(), select_records() + w.sql + " ORDER BY id DESC LIMIT " + std::to_string(kPage + 1) +
                                           " OFFSET " + std::to_string(int64_t(page) * kPage));
    for (size_t i = 0; i < w.params.size(); ++i) st.bind(int(i + 1), w.params[i]);
    json rows = json::array();
    bool more = false;
    while (st.step()) {
        if (int(rows.size()) == kPage) {
            more = true;
            break;
        }
        rows.push_back(row_json(st));
    }
    return {{"rows", rows}, {"more", more}, {"page", page}};
}

json audit_record(const audit::Store& store, int64_t id) {
    audit::schema::Stmt st(store.db(), select_records() + " WHERE id = ?");
    st.bind(1, id);
    return st.step() ? row_json(st) : json();
}

std::string audit_export(const audit::Store& store, const std::map<std::string, std::string>& filters,
                         const std::string& format, int64_t now_ms) {
    audit::Where w = audit::build_filters(filters, now_ms);
    audit::schema::Stmt st(store.db(), select_records() + w.sql + " ORDER BY id");
    for (size_t i = 0; i < w.params.size(); ++i) st.bind(int(i + 1), w.params[i]);
    const auto& cols = audit::record_columns();
    std::string out;
    if (format == "csv") {
        out = "id";
        for (const auto& c : cols) out += "," + std::string(c == "grp" ? "group" : c);
        out += "\n";
    }
    auto csv = [](const std::string& v) {
        // A leading = + - @ would be a formula in a spreadsheet: quoted and prefixed.
        const bool formula = !v.empty() && (v[0] == '=' || v[0] == '+' || v[0] == '-' || v[0] == '@');
        if (!formula && v.find_first_of(",\"\n\r") == std::string::npos) return v;
        std::string q = formula ? "\"'" : "\"";
        for (char c : v) q += c == '"' ? std::string("\"\"") : std::string(1, c);
        return q + "\"";
    };
    while (st.step()) {
        if (format == "csv") {
            out += std::to_string(st.integer(0));
            for (size_t i = 0; i < cols.size(); ++i) out += "," + csv(st.text(int(1 + i)));
            out += "\n";
        } else {
            out += row_json(st).dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
        }
    }
    return out;
}

json rules_view(rules::RuleDb& db) {
    rules::RuleData d = db.load();
    std::map<std::string, int64_t> hosts;
    for (const auto& h : d.hosts) ++hosts[h.category];
    json cats = json::array();
    for (const auto& c : d.categories) cats.push_back({{"name", c.name}, {"description", c.description}, {"hosts", hosts[c.name]}});
    auto policies = d.policies;
    std::stable_sort(policies.begin(), policies.end(), [](const auto& a, const auto& b) { return a.priority < b.priority; });
    json pol = json::array();
    for (const auto& p : policies)
        pol.push_back({{"name", p.name}, {"priority", p.priority}, {"action", p.action}, {"user", p.match_user},
                       {"group", p.match_group}, {"client", p.match_client_cidr}, {"category", p.match_category},
                       {"enabled", p.enabled}});
    json sigs = json::array();
    for (const auto& s : d.signatures)
        sigs.push_back({{"name", s.name}, {"target", s.target}, {"action", s.action}, {"severity", s.severity},
                        {"enabled", s.enabled}});
    json hist = json::array();
    for (const auto& c : db.history(30))
        hist.push_back({{"id", c.id}, {"time", c.ts}, {"actor", c.actor}, {"operation", c.operation}, {"object", c.object},
                        {"before", c.before}, {"after", c.after}});
    json host_list = json::array();
    for (const auto& h : d.hosts) host_list.push_back({{"pattern", h.pattern}, {"category", h.category}});
    return {{"version", d.version}, {"categories", cats}, {"policies", pol}, {"signatures", sigs},
            {"hosts", host_list}, {"history", hist}};
}

json rule_test(rules::RuleDb& db, const std::string& url, const std::string& user, const std::vector<std::string>& groups) {
    const inspect::RuleDbCache cache(db, false);
    inspect::InspectOptions io;
    io.compiled = &cache;
    rules::RuleData d = db.load();
    auto rs = inspect::RuleSet::compile(d, io);
    inspect::Subject s;
    s.url = url;
    auto scheme_end = url.find("://");
    std::string rest = scheme_end == std::string::npos ? url : url.substr(scheme_end + 3);
    s.host = rest.substr(0, rest.find_first_of(":/?#"));
    s.user = user;
    s.groups = groups;
    if (groups.empty())
        for (const auto& u : d.users)
            if (u.name == user) s.groups = u.groups;
    s.client_ip = "127.0.0.1";
    inspect::Verdict v = rs->check_connect(s);
    if (!v.bypass && v.action != inspect::Action::block) v.merge(rs->check_request(s, {}));
    return {{"url", url}, {"user", user}, {"groups", s.groups}, {"action", v.bypass ? "bypass" : inspect::action_name(v.action)},
            {"rule", v.rule}, {"category", v.category}, {"reason", v.reason}, {"version", d.version}};
}

json ca_view(const std::string& ca_dir) {
    auto ca = tls::load_ca_dir(ca_dir);
    json out = {{"root", cert_json(ca.root.get())}};
    if (ca.issuer.get() != ca.root.get()) out["issuing"] = cert_json(ca.issuer.get());
    return out;
}

}  // namespace vigil::console

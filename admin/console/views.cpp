// Page rendering. Plain HTML and one stylesheet; charts are drawn by /static/console.js from
// /api/overview with Chart.js, served by the console itself (Debian's libjs-chart.js).
#include "admin/console/views.hpp"

#include "core/template.hpp"

#include <ctime>

namespace vigil::console {
namespace {

using nlohmann::json;

std::string str(const json& j) {
    if (j.is_string()) return j.get<std::string>();
    if (j.is_null()) return "";
    return j.dump();
}

std::string when(int64_t ms) {
    std::time_t t = std::time_t(ms / 1000);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
    return buf;
}

std::string layout(const PageContext& c, const std::string& title, const std::string& body) {
    std::string nav;
    if (!c.user.empty())
        nav = "<nav><a href=\"/\">Overview</a><a href=\"/audit\">Audit</a><a href=\"/rules\">Rules</a><a href=\"/ca\">CA</a>"
              "<span class=\"who\">" + esc(c.user) + " (" + role_name(c.role) + ")</span>"
              "<form method=\"post\" action=\"/logout\" class=\"inline\"><input type=\"hidden\" name=\"csrf\" value=\"" +
              esc(c.csrf) + "\"><button>Sign out</button></form></nav>";
    return "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + esc(title) +
           " — Vigil console</title><link rel=\"stylesheet\" href=\"/static/console.css\"></head><body>" + nav +
           "<main><h1>" + esc(title) + "</h1>" + body +
           "</main><script src=\"/static/chart.js\"></script><script src=\"/static/console.js\"></script></body></html>\n";
}

std::string table(const std::vector<std::string>& head, const std::vector<std::vector<std::string>>& rows,
                  const std::string& id) {
    std::string out = "<table id=\"" + id + "\"><thead><tr>";
    for (const auto& h : head) out += "<th>" + esc(h) + "</th>";
    out += "</tr></thead><tbody>";
    for (const auto& r : rows) {
        out += "<tr>";
        for (const auto& cell : r) out += "<td>" + cell + "</td>";  // cells are escaped by the caller
        out += "</tr>";
    }
    return out + "</tbody></table>";
}

std::string csrf_field(const PageContext& c) { return "<input type=\"hidden\" name=\"csrf\" value=\"" + esc(c.csrf) + "\">"; }

}  // namespace

std::string esc(const std::string& s) { return core::html_escape(s); }

std::string login_page(const std::string& csrf, const std::string& message) {
    PageContext none;
    return layout(none, "Sign in",
                  (message.empty() ? "" : "<p class=\"error\" id=\"message\">" + esc(message) + "</p>") +
                      "<form method=\"post\" action=\"/login\" id=\"login\"><input type=\"hidden\" name=\"csrf\" value=\"" +
                      esc(csrf) + "\"><label>User <input name=\"user\" autocomplete=\"username\" required></label>"
                      "<label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\" "
                      "required></label><button>Sign in</button></form>");
}

std::string overview_page(const PageContext& c, const json& o, const json& meta, const std::string& range) {
    std::string body = "<p class=\"ranges\">Last <a href=\"/?range=hour\">hour</a> · <a href=\"/?range=day\">day</a> · "
                       "<a href=\"/?range=week\">week</a> (showing: <b id=\"range\">" + esc(range) + "</b>)</p>";
    const auto& a = o["actions"];
    auto n = [&](const char* k) { return a.contains(k) ? str(a[k]) : "0"; };
    body += "<div class=\"cards\">"
            "<div class=\"card\"><b id=\"requests\">" + str(o["requests"]) + "</b> transactions</div>"
            "<div class=\"card\"><b id=\"blocked\">" + n("block") + "</b> blocked</div>"
            "<div class=\"card\"><b id=\"warned\">" + n("warn") + "</b> warned</div>"
            "<div class=\"card\"><b id=\"errors\">" + n("error") + "</b> errors</div>"
            "<div class=\"card\"><b id=\"bytes\">" + str(o["bytes_out"]) + "</b> bytes to clients</div>"
            "<div class=\"card\"><b id=\"ruleset\">" + esc(str(meta["ruleset_version"])) + "</b> ruleset version</div>"
            "<div class=\"card\"><b id=\"ca-days\">" + esc(str(meta["ca_days_left"])) + "</b> days until the issuing CA expires</div>"
            "<div class=\"card\"><b id=\"cache\">" + str(o["cache_hits"]) + " / " + str(o["cache_lookups"]) + "</b> cache hits</div>"
            "</div><div class=\"charts\"><canvas id=\"chart-series\" data-range=\"" + esc(range) +
            "\"></canvas><canvas id=\"chart-actions\" data-range=\"" + esc(range) + "\"></canvas></div>";
    auto top = [&](const char* title, const json& rows, const char* id, bool blocked) {
        std::vector<std::vector<std::string>> r;
        for (const auto& x : rows) r.push_back({esc(str(x["key"])), str(blocked ? x["blocked"] : x["count"])});
        return "<section><h2>" + std::string(title) + "</h2>" + table({"", blocked ? "blocked" : "transactions"}, r, id) +
               "</section>";
    };
    body += "<div class=\"tops\">" + top("Top categories", o["top_categories"], "top-categories", false) +
            top("Top blocked hosts", o["top_blocked_hosts"], "top-blocked-hosts", true) +
            top("Top users", o["top_users"], "top-users", false);
    std::vector<std::vector<std::string>> errs;
    for (const auto& e : o["origin_cert_errors"]) errs.push_back({esc(str(e["reason"])), str(e["count"])});
    body += "<section><h2>Origin certificate errors</h2>" + table({"reason", "count"}, errs, "cert-errors") + "</section></div>";
    return layout(c, "Overview", body);
}

std::string audit_page_html(const PageContext& c, const json& page, const std::map<std::string, std::string>& form,
                            const std::string& error) {
    auto v = [&](const char* k) {
        auto it = form.find(k);
        return it == form.end() ? std::string() : esc(it->second);
    };
    std::string body = "<form method=\"get\" action=\"/audit\" id=\"filters\" class=\"filters\">";
    for (const char* k : {"since", "until", "user", "group", "host", "category", "action", "rule", "status", "txid"})
        body += "<label>" + std::string(k) + " <input name=\"" + k + "\" value=\"" + v(k) + "\"></label>";
    body += "<button>Search</button></form>";
    if (!error.empty()) return layout(c, "Audit", body + "<p class=\"error\" id=\"message\">" + esc(error) + "</p>");
    std::string query;
    for (const auto& [k, val] : form)
        if (k != "page" && !val.empty()) query += "&" + esc(k) + "=" + esc(val);
    body += "<p><a href=\"/audit/export?format=csv" + query + "\">Export CSV</a> · <a href=\"/audit/export?format=jsonl" +
            query + "\">Export JSON lines</a> · <a href=\"/audit/verify\">Verify the chain</a></p>";
    std::vector<std::vector<std::string>> rows;
    for (const auto& r : page["rows"])
        rows.push_back({"<a href=\"/audit/record?id=" + str(r["id"]) + "\">" + str(r["id"]) + "</a>",
                        esc(when(r["ts_ms"].get<int64_t>())), esc(str(r["user"])), esc(str(r["client_ip"])),
                        esc(str(r["host"])), esc(str(r["action"])), esc(str(r["status"])), esc(str(r["category"])),
                        esc(str(r["rule"])), esc(str(r["reason"])), "<span class=\"url\">" + esc(str(r["url"])) + "</span>"});
    body += table({"id", "time (UTC)", "user", "client", "host", "action", "status", "category", "rule", "why", "URL"}, rows,
                  "records");
    const int p = page["page"].get<int>();
    body += "<p class=\"pages\">";
    if (p > 0) body += "<a href=\"/audit?page=" + std::to_string(p - 1) + query + "\">newer</a> ";
    if (page["more"].get<bool>()) body += "<a id=\"older\" href=\"/audit?page=" + std::to_string(p + 1) + query + "\">older</a>";
    return layout(c, "Audit", body + "</p>");
}

std::string record_page(const PageContext& c, const json& record) {
    if (record.is_null()) return message_page(c, "Record", "no such record");
    std::vector<std::vector<std::string>> rows;
    for (const auto& [k, val] : record.items()) rows.push_back({esc(k), "<code>" + esc(str(val)) + "</code>"});
    return layout(c, "Record " + str(record["id"]), table({"field", "value"}, rows, "record"));
}

std::string verify_page(const PageContext& c, bool ok, int64_t rows, const std::string& problem) {
    return layout(c, "Chain verification",
                  ok ? "<p id=\"verified\" class=\"ok\">verified: " + std::to_string(rows) + " rows, the hash chain is intact</p>"
                     : "<p id=\"verified\" class=\"error\">NOT VERIFIED: " + esc(problem) + "</p>");
}

std::string rules_page(const PageContext& c, const json& r, const json& test, const std::string& message) {
    std::string body = "<p>Ruleset version <b id=\"version\">" + str(r["version"]) + "</b></p>";
    if (!message.empty()) body += "<p class=\"message\" id=\"message\">" + esc(message) + "</p>";
    if (c.role >= Role::analyst) {
        body += "<section><h2>Test a URL</h2><form method=\"post\" action=\"/rules/test\" id=\"test\">" + csrf_field(c) +
                "<label>URL <input name=\"url\" required></label><label>User <input name=\"user\"></label>"
                "<label>Groups <input name=\"groups\" placeholder=\"finance,staff\"></label><button>Test</button></form>";
        if (!test.is_null())
            body += "<p id=\"verdict\"><b>" + esc(str(test["action"])) + "</b> " + esc(str(test["url"])) +
                    (str(test["rule"]).empty() ? "" : " by " + esc(str(test["rule"]))) +
                    (str(test["category"]).empty() ? "" : " (category " + esc(str(test["category"])) + ")") + " — " +
                    esc(str(test["reason"])) + "</p>";
        body += "</section>";
    }
    if (c.role == Role::admin)
        body += "<section><h2>Change</h2><form method=\"post\" action=\"/rules/change\" id=\"add-host\">" + csrf_field(c) +
                "<input type=\"hidden\" name=\"op\" value=\"add-host\"><label>Host <input name=\"pattern\" required></label>"
                "<label>Category <input name=\"category\" required></label><button>Add host</button></form></section>";
    std::vector<std::vector<std::string>> pol;
    for (const auto& p : r["policies"]) {
        std::string toggle;
        if (c.role == Role::admin)
            toggle = "<form method=\"post\" action=\"/rules/change\" class=\"inline\">" + csrf_field(c) +
                     "<input type=\"hidden\" name=\"op\" value=\"" + (p["enabled"].get<bool>() ? "disable" : "enable") +
                     "-policy\"><input type=\"hidden\" name=\"name\" value=\"" + esc(str(p["name"])) + "\"><button>" +
                     (p["enabled"].get<bool>() ? "disable" : "enable") + "</button></form>";
        pol.push_back({str(p["priority"]), esc(str(p["name"])), esc(str(p["action"])), esc(str(p["user"])),
                       esc(str(p["group"])), esc(str(p["client"])), esc(str(p["category"])),
                       (p["enabled"].get<bool>() ? "yes" : "no") + toggle});
    }
    body += "<section><h2>Policies, in evaluation order</h2>" +
            table({"priority", "name", "action", "user", "group", "client", "category", "enabled"}, pol, "policies") + "</section>";
    std::vector<std::vector<std::string>> cats;
    for (const auto& x : r["categories"]) cats.push_back({esc(str(x["name"])), str(x["hosts"]), esc(str(x["description"]))});
    body += "<section><h2>Categories</h2>" + table({"category", "hosts", "description"}, cats, "categories") + "</section>";
    std::vector<std::vector<std::string>> hosts;
    for (const auto& h : r["hosts"]) hosts.push_back({esc(str(h["pattern"])), esc(str(h["category"]))});
    if (hosts.size() > 200) hosts.resize(200);
    body += "<section><h2>Hosts (first 200)</h2>" + table({"pattern", "category"}, hosts, "hosts") + "</section>";
    std::vector<std::vector<std::string>> sigs;
    for (const auto& s : r["signatures"])
        sigs.push_back({esc(str(s["name"])), esc(str(s["target"])), esc(str(s["action"])), esc(str(s["severity"])),
                        s["enabled"].get<bool>() ? "yes" : "no"});
    body += "<section><h2>Signatures</h2>" + table({"name", "target", "action", "severity", "enabled"}, sigs, "signatures") +
            "</section>";
    std::vector<std::vector<std::string>> hist;
    for (const auto& h : r["history"])
        hist.push_back({esc(str(h["time"])), esc(str(h["actor"])), esc(str(h["operation"])),
                        "<code>" + esc(str(h["before"])) + "</code>", "<code>" + esc(str(h["after"])) + "</code>"});
    body += "<section><h2>Changes</h2>" + table({"time", "who", "what", "before", "after"}, hist, "history") + "</section>";
    return layout(c, "Rules", body);
}

std::string ca_page(const PageContext& c, const json& ca) {
    auto cert = [&](const char* title, const json& x) {
        std::vector<std::vector<std::string>> rows = {{"subject", esc(str(x["subject"]))},
                                                      {"expires", esc(when(x["not_after"].get<int64_t>() * 1000)) + " UTC"},
                                                      {"days left", esc(str(x["days_left"]))},
                                                      {"SHA-256", "<code>" + esc(str(x["sha256"])) + "</code>"},
                                                      {"SHA-1", "<code>" + esc(str(x["sha1"])) + "</code>"}};
        return "<section><h2>" + std::string(title) + "</h2>" + table({"", ""}, rows, title[0] == 'R' ? "root" : "issuing") +
               "</section>";
    };
    std::string body = cert("Root", ca["root"]);
    if (ca.contains("issuing")) body += cert("Issuing CA", ca["issuing"]);
    body += "<p>Downloads for the deployment kit: <a href=\"/ca/vigil-root.pem\">PEM</a> · <a href=\"/ca/vigil-root.cer\">"
            "DER (.cer)</a> · <a href=\"/ca/vigil-root.mobileconfig\">macOS/iOS profile</a>. Keys never leave the gateway; "
            "rotation is <code>vigil-ca rotate</code>.</p>";
    return layout(c, "Certificate authority", body);
}

std::string message_page(const PageContext& c, const std::string& title, const std::string& message) {
    return layout(c, title, "<p id=\"message\">" + esc(message) + "</p>");
}

}  // namespace vigil::console

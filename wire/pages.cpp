// Vigil's own pages, rendered from a template (the built-in one or the administrator's). Every
// value is escaped; no client data reaches the page raw.
#include "wire/pages.hpp"

#include <cctype>
#include <chrono>
#include <string_view>
#include <ctime>

#include "config/config.hpp"

namespace vigil::wire {

const char* action_name(PageAction a) {
    switch (a) {
        case PageAction::refuse: return "refuse";
        case PageAction::error: return "error";
        case PageAction::block: return "block";
        case PageAction::warn: return "warn";
        case PageAction::aborted: return "aborted";
    }
    return "error";
}

std::string url_encode(std::string_view text) {
    static const char* hexd = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : text) {
        if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hexd[c >> 4];
            out += hexd[c & 15];
        }
    }
    return out;
}

namespace {

std::string fill(std::string tmpl, const PageInfo& info) {
    const std::pair<const char*, const std::string*> values[] = {
        {"{url}", &info.host}, {"{category}", &info.category}, {"{transaction}", &info.transaction}};
    for (const auto& [name, value] : values)
        for (size_t at = tmpl.find(name); at != std::string::npos; at = tmpl.find(name, at)) {
            const std::string enc = url_encode(*value);
            tmpl.replace(at, std::string_view(name).size(), enc);
            at += enc.size();
        }
    return tmpl;
}

}  // namespace

namespace {

// The built-in page, in the template language an administrator's templates use (the same
// variables, the same escaping): one renderer for both.
constexpr const char* kPage = R"(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{{title}}</title><style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}h1{font-size:1.5rem}.box{border-left:4px solid #c0392b;padding:.5rem 1rem;background:#fbeeee}.box.warn{border-color:#d68910;background:#fdf2e3}dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;color:#555;font-size:.9rem}dt{font-weight:600}code{word-break:break-all}</style></head><body>
{{#brand}}<header id="brand">{{#logo}}<img id="logo" alt="" style="max-height:3rem" src="{{logo}}"> {{/logo}}{{#organisation}}<strong id="organisation">{{organisation}}</strong>{{/organisation}}</header>
{{/brand}}<h1>{{title}}</h1>
<div class="box {{action}}"><p id="reason">{{reason}}</p></div>
<dl>{{details}}</dl>
{{#continue_url}}<p><a id="continue" href="{{continue_url}}">Continue to the site</a> (your choice is recorded)</p>
{{/continue_url}}{{#request_access_url}}<p><a id="request-access" href="{{request_access_url}}">Ask for access to this site</a> if you need it for your work.</p>
{{/request_access_url}}{{#help_url}}<p>If you think this is wrong, <a id="help" href="{{help_url}}">contact {{contact}}</a> and quote the reference above.</p>
{{/help_url}}{{^help_url}}<p>If you think this is wrong, contact {{contact}} and quote the reference above.</p>
{{/help_url}}<p style="color:#888;font-size:.8rem">Vigil secure web gateway</p>
</body></html>
)";

// {{details}}: the facts of the page as <dt>/<dd> rows.
constexpr const char* kDetails =
    R"({{#address}}<dt>Address</dt><dd><code id="host">{{address}}</code></dd>{{/address}})"
    R"({{#category}}<dt>Category</dt><dd><code id="category">{{category}}</code></dd>{{/category}})"
    R"({{#rule}}<dt>Rule</dt><dd><code id="rule">{{rule}}</code></dd>{{/rule}}{{facts}})"
    R"({{#code}}<dt>Reason code</dt><dd><code id="code">{{code}}</code></dd>{{/code}})"
    R"({{#status}}<dt>Status</dt><dd>{{status}}</dd>{{/status}}<dt>Time</dt><dd>{{time}}</dd>)"
    R"({{#reference}}<dt>Reference</dt><dd><code id="transaction">{{reference}}</code></dd>{{/reference}})";

// Parsed on first use; a mistake in them fails every page test at once.
const core::Template& builtin_page() {
    static const core::Template t = core::Template::parse(kPage, config::page_variables());
    return t;
}

const core::Template& builtin_details() {
    static const core::Template t = core::Template::parse(kDetails, config::page_variables());
    return t;
}

}  // namespace

std::map<std::string, std::string> page_values(const PageInfo& info, const Branding& brand) {
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    char when[32];
    std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
    std::string facts;
    for (const auto& [label, value] : info.facts)
        facts += "<dt>" + html_escape(label) + "</dt><dd>" + html_escape(value) + "</dd>";
    std::map<std::string, std::string> v = {
        {"action", action_name(info.action)},
        {"address", info.host},
        {"brand", brand.logo.empty() && brand.organisation.empty() ? "" : "1"},
        {"category", info.category},
        {"code", info.code},
        {"contact", brand.organisation.empty() ? "your IT team" : brand.organisation},
        {"continue_url", info.continue_url},
        {"facts", facts},
        {"help_url", brand.help_url},
        {"logo", brand.logo},
        {"organisation", brand.organisation},
        {"reason", info.reason},
        // The reference a person quotes to IT: the transaction ID, which `vigil-audit show` finds
        // on any gateway (the connection number only when there is no transaction record).
        {"reference", !info.transaction.empty() ? info.transaction : info.conn_id ? "C" + std::to_string(info.conn_id) : ""},
        {"request_access_url",
         info.action == PageAction::block && !brand.request_access_url.empty() ? fill(brand.request_access_url, info) : ""},
        {"rule", info.rule},
        // A status code means nothing to the person asked to decide on a warning.
        {"status", info.action == PageAction::warn ? "" : std::to_string(info.status)},
        {"time", when},
        {"title", info.title},
    };
    v["details"] = builtin_details().render(v, config::page_html_variables());
    return v;
}

std::string render_page(const PageInfo& info, const Branding& brand) {
    const core::Template& t = brand.page ? *brand.page : builtin_page();
    return t.render(page_values(info, brand), config::page_html_variables());
}

const core::Template* page_template(const config::Config& cfg, PageAction action) {
    const auto& t = cfg.pages.templates;
    if (auto it = t.find(action_name(action)); it != t.end()) return it->second.get();
    if (auto it = t.find("page"); it != t.end()) return it->second.get();
    return nullptr;
}

}  // namespace vigil::wire

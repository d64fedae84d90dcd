// Error page rendering. Everything interpolated is escaped; no client data reaches the page raw.
#include "wire/pages.hpp"

#include <cctype>
#include <chrono>
#include <string_view>
#include <ctime>

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

std::string html_escape(const std::string& s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&#39;"; break;
            default: out += c;
        }
    }
    return out;
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

std::string render_page(const PageInfo& info, const Branding& brand) {
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    char when[32];
    std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
    std::string out;
    out += "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
           "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
           "<title>" + html_escape(info.title) + "</title><style>"
           "body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}"
           "h1{font-size:1.5rem}.box{border-left:4px solid #c0392b;padding:.5rem 1rem;background:#fbeeee}"
           "dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;color:#555;font-size:.9rem}"
           "dt{font-weight:600}code{word-break:break-all}</style></head><body>\n";
    if (!brand.logo.empty() || !brand.organisation.empty()) {
        out += "<header id=\"brand\">";
        if (!brand.logo.empty())
            out += "<img id=\"logo\" alt=\"\" style=\"max-height:3rem\" src=\"" + html_escape(brand.logo) + "\"> ";
        if (!brand.organisation.empty())
            out += "<strong id=\"organisation\">" + html_escape(brand.organisation) + "</strong>";
        out += "</header>\n";
    }
    out += "<h1>" + html_escape(info.title) + "</h1>\n";
    out += "<div class=\"box\"><p id=\"reason\">" + html_escape(info.reason) + "</p></div>\n<dl>";
    if (!info.host.empty()) out += "<dt>Address</dt><dd><code id=\"host\">" + html_escape(info.host) + "</code></dd>";
    if (!info.category.empty())
        out += "<dt>Category</dt><dd><code id=\"category\">" + html_escape(info.category) + "</code></dd>";
    if (!info.rule.empty()) out += "<dt>Rule</dt><dd><code id=\"rule\">" + html_escape(info.rule) + "</code></dd>";
    for (const auto& [label, value] : info.facts)
        out += "<dt>" + html_escape(label) + "</dt><dd>" + html_escape(value) + "</dd>";
    if (!info.code.empty()) out += "<dt>Reason code</dt><dd><code id=\"code\">" + html_escape(info.code) + "</code></dd>";
    // A status code means nothing to the person asked to decide on a warning.
    if (info.action != PageAction::warn) out += "<dt>Status</dt><dd>" + std::to_string(info.status) + "</dd>";
    out += "<dt>Time</dt><dd>" + std::string(when) + "</dd>";
    // The reference a person quotes to IT: the transaction ID, which `vigil-audit show` finds on
    // any gateway (the connection number only when there is no transaction record).
    if (!info.transaction.empty())
        out += "<dt>Reference</dt><dd><code id=\"transaction\">" + html_escape(info.transaction) + "</code></dd>";
    else if (info.conn_id)
        out += "<dt>Reference</dt><dd><code>C" + std::to_string(info.conn_id) + "</code></dd>";
    out += "</dl>\n";
    if (!info.continue_url.empty())
        out += "<p><a id=\"continue\" href=\"" + html_escape(info.continue_url) +
               "\">Continue to the site</a> (your choice is recorded)</p>\n";
    if (info.action == PageAction::block && !brand.request_access_url.empty())
        out += "<p><a id=\"request-access\" href=\"" + html_escape(fill(brand.request_access_url, info)) +
               "\">Ask for access to this site</a> if you need it for your work.</p>\n";
    const std::string it = brand.organisation.empty() ? "your IT team" : html_escape(brand.organisation);
    if (!brand.help_url.empty())
        out += "<p>If you think this is wrong, <a id=\"help\" href=\"" + html_escape(brand.help_url) + "\">contact " +
               it + "</a> and quote the reference above.</p>\n";
    else
        out += "<p>If you think this is wrong, contact " + it + " and quote the reference above.</p>\n";
    out += "<p style=\"color:#888;font-size:.8rem\">Vigil secure web gateway</p>\n</body></html>\n";
    return out;
}

}  // namespace vigil::wire

// Error page rendering. Everything interpolated is escaped; no client data reaches the page raw.
#include "wire/pages.hpp"

#include <chrono>
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

std::string render_page(const PageInfo& info) {
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
    out += "<h1>" + html_escape(info.title) + "</h1>\n";
    out += "<div class=\"box\"><p id=\"reason\">" + html_escape(info.reason) + "</p></div>\n<dl>";
    if (!info.host.empty()) out += "<dt>Address</dt><dd><code id=\"host\">" + html_escape(info.host) + "</code></dd>";
    if (!info.category.empty())
        out += "<dt>Category</dt><dd><code id=\"category\">" + html_escape(info.category) + "</code></dd>";
    if (!info.rule.empty()) out += "<dt>Rule</dt><dd><code id=\"rule\">" + html_escape(info.rule) + "</code></dd>";
    if (!info.code.empty()) out += "<dt>Reason code</dt><dd><code id=\"code\">" + html_escape(info.code) + "</code></dd>";
    out += "<dt>Status</dt><dd>" + std::to_string(info.status) + "</dd>";
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
    out += "<p>If you think this is wrong, contact your IT team and quote the reference above.</p>\n"
           "<p style=\"color:#888;font-size:.8rem\">Vigil secure web gateway</p>\n</body></html>\n";
    return out;
}

}  // namespace vigil::wire

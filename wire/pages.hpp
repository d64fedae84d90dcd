// The HTML pages Vigil answers with itself: errors and refusals, in plain words.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/template.hpp"

namespace vigil::config {
struct Config;
}

namespace vigil::wire {

using core::html_escape;

// What a page means for the transaction's audit record.
enum class PageAction : uint8_t { refuse, error, block, warn, aborted };
const char* action_name(PageAction a);  // "refuse", "error", ...

struct PageInfo {
    int status = 502;
    std::string title;   // "The site's certificate could not be trusted"
    std::string reason;  // plain words: "the origin's certificate has expired"
    std::string host;    // what the user asked for (host or URL)
    std::string code;    // stable reason code, e.g. "expired", "dns_failure"
    uint64_t conn_id = 0;
    std::string transaction;  // the transaction ID: the page's reference, X-Vigil-Transaction
    std::string rule;      // the rule that decided, for block pages
    std::string category;
    std::string continue_url;  // warn pages: where "Continue" leads
    std::string proxy_authenticate;  // 407 pages: the challenges, one per line
    PageAction action = PageAction::error;
    std::vector<std::pair<std::string, std::string>> facts;  // more rows (label, value), e.g. a certificate's names
};

// How the organisation brands the pages ([pages]; all optional).
struct Branding {
    std::string organisation;
    std::string logo;  // a data: URI
    std::string help_url;
    std::string request_access_url;  // {url}, {category}, {transaction} filled in, URL-encoded
    const core::Template* page = nullptr;  // the administrator's template for this page, if any
};

std::string render_page(const PageInfo& info, const Branding& brand = {});
// The values a template sees (config::page_variables(), all of them).
std::map<std::string, std::string> page_values(const PageInfo& info, const Branding& brand);
// The administrator's template for a page of this kind ([pages] template_dir), or null.
const core::Template* page_template(const config::Config& cfg, PageAction action);
// `text` percent-encoded for a URL's query (RFC 3986 unreserved characters kept).
std::string url_encode(std::string_view text);

}  // namespace vigil::wire

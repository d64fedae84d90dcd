// The HTML pages Vigil answers with itself: errors and refusals, in plain words.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vigil::wire {

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
    std::string proxy_authenticate;  // 407 pages: the challenge
    PageAction action = PageAction::error;
    std::vector<std::pair<std::string, std::string>> facts;  // more rows (label, value), e.g. a certificate's names
};

// How the organisation brands the pages ([pages]; all optional).
struct Branding {
    std::string organisation;
    std::string logo;  // a data: URI
    std::string help_url;
    std::string request_access_url;  // {url}, {category}, {transaction} filled in, URL-encoded
};

std::string render_page(const PageInfo& info, const Branding& brand = {});
// `text` percent-encoded for a URL's query (RFC 3986 unreserved characters kept).
std::string url_encode(std::string_view text);
std::string html_escape(const std::string& s);

}  // namespace vigil::wire

// The console's small HTTP pieces: tokens, form and cookie parsing, the security headers.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

namespace vigil::console {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;

std::string token();  // 48 hex digits from the CSPRNG
std::string url_decode(std::string_view s);
std::map<std::string, std::string> parse_form(std::string_view s);  // application/x-www-form-urlencoded
std::string cookie(const Request& req, const std::string& name);
int64_t now_ms();
std::string static_dir();  // installed: PREFIX/share/vigil/console; else the sources
void harden(Response& res);  // CSP, nosniff, referrer policy, HSTS, no-store

}  // namespace vigil::console

// The console's HTML: one layout, one function per page. Every value from the audit log, the
// rules or a request is escaped here (audit fields are attacker-controlled: URLs, user agents);
// pages carry no inline script, and the Content-Security-Policy allows none.
#pragma once

#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "admin/console/users.hpp"

namespace vigil::console {

std::string esc(const std::string& s);

struct PageContext {
    std::string user;
    Role role = Role::viewer;
    std::string csrf;  // the session's token, in every form
};

std::string login_page(const std::string& csrf, const std::string& message);
std::string overview_page(const PageContext& c, const nlohmann::json& o, const nlohmann::json& meta, const std::string& range);
std::string audit_page_html(const PageContext& c, const nlohmann::json& page, const std::map<std::string, std::string>& form,
                            const std::string& error);
std::string record_page(const PageContext& c, const nlohmann::json& record);
std::string verify_page(const PageContext& c, bool ok, int64_t rows, const std::string& problem);
std::string rules_page(const PageContext& c, const nlohmann::json& rules, const nlohmann::json& test, const std::string& message);
std::string ca_page(const PageContext& c, const nlohmann::json& ca);
std::string message_page(const PageContext& c, const std::string& title, const std::string& message);

}  // namespace vigil::console

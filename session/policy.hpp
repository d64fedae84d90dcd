// Turning inspection verdicts into gateway behaviour: block and warn pages, the signed
// "continue" links of warn pages, the request as rules see it.
#pragma once

#include <optional>
#include <string>

#include "session/services.hpp"
#include "wire/framing.hpp"
#include "wire/pages.hpp"

namespace vigil::session {


PageInfo block_page(const inspect::Verdict& v, const std::string& url, uint64_t cid);

// A warn page whose Continue link carries a token bound to this client, host and deadline.
PageInfo warn_page(const Policy& policy, const inspect::Verdict& v, const std::string& url, const std::string& client,
                   const std::string& host, uint64_t cid);

// If `target` carries a continue token: removes it from `target`; returns whether it is valid
// for this client and host (and then records the allowance).
std::optional<bool> take_continue_token(Policy& policy, std::string& target, const std::string& client,
                                        const std::string& host);

// Grants: what a valid Continue link gives the browser, a cookie for the host it continued to
// (`vigil_grant`, or `vigil_cert_grant` past a certificate warning) signed with the warn key
// (inspect.warn_key_file): good for warn_duration, on any gateway with the same key, after a
// restart too; a new key voids them. `key`: the host, or cert_warning_key(host).
// The Set-Cookie value for a new grant (`secure`: the site is HTTPS).
std::string grant_cookie(const Policy& policy, const std::string& client, const std::string& key, bool secure);
// Whether the request carries a valid grant for this client and key (then also remembered).
bool has_grant(Policy& policy, const boost::beast::http::fields& fields, const std::string& client,
               const std::string& key);
// The Cookie field without Vigil's grants: they are for the gateway, never for the origin.
std::string without_grants(std::string_view cookie);

inspect::Headers header_list(const boost::beast::http::fields& fields);

// "a,b" -> {"a", "b"} (the audit record keeps a user's groups comma-joined).
std::vector<std::string> split_groups(const std::string& joined);

// Counts and logs a verdict that let the transaction through (monitor, allowed warn).
void note_verdict(Counters& counters, const inspect::Verdict& v, const std::string& url, uint64_t cid);

}  // namespace vigil::session

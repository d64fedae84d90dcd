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

inspect::Headers header_list(const boost::beast::http::fields& fields);

// "a,b" -> {"a", "b"} (the audit record keeps a user's groups comma-joined).
std::vector<std::string> split_groups(const std::string& joined);

// Counts and logs a verdict that let the transaction through (monitor, allowed warn).
void note_verdict(Counters& counters, const inspect::Verdict& v, const std::string& url, uint64_t cid);

}  // namespace vigil::session

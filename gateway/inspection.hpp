// Internal: turning inspection verdicts into gateway behaviour — block and warn pages, the
// signed "continue" links of warn pages, and the request's URL as rules see it.
#pragma once

#include <optional>
#include <string>

#include "gateway/framing.hpp"
#include "gateway/pages.hpp"
#include "gateway/state.hpp"

namespace vigil::gateway {

// "https://host[:port]/path" (default ports omitted).
std::string full_url(const std::string& scheme, const Authority& a, const std::string& target);

PageInfo block_page(const inspect::Verdict& v, const std::string& url, uint64_t cid);

// A warn page whose Continue link carries a token bound to this client, host and deadline.
PageInfo warn_page(Gateway& gw, const inspect::Verdict& v, const std::string& url, const std::string& client,
                   const std::string& host, uint64_t cid);

// If `target` carries a continue token: removes it from `target`; returns whether it is valid
// for this client and host (and then records the allowance).
std::optional<bool> take_continue_token(Gateway& gw, std::string& target, const std::string& client,
                                        const std::string& host);

inspect::Headers header_list(const boost::beast::http::fields& fields);

// "a,b" -> {"a", "b"} (the audit record keeps a user's groups comma-joined).
std::vector<std::string> split_groups(const std::string& joined);

// Counts and logs a verdict that let the transaction through (monitor, allowed warn).
void note_verdict(Gateway& gw, const inspect::Verdict& v, const std::string& url, uint64_t cid);

}  // namespace vigil::gateway

// Proxy authentication (HTTP Basic against the rule database's users), with the
// slow password check on its own thread, a short-lived cache, and failed-login throttling.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <boost/beast/http/fields.hpp>

#include "session/services.hpp"
#include "wire/pages.hpp"

namespace vigil::session {

struct Identity {
    std::string user;  // "" when authentication is not required for this client
    std::vector<std::string> groups;
};

// Either the client's identity, or the page to answer with (407 or 429).
struct AuthResult {
    std::optional<Identity> identity;
    std::optional<PageInfo> refusal;
};

net::awaitable<AuthResult> authenticate(Authenticator& auth, const boost::beast::http::fields& fields, const address& client,
                                        uint64_t conn_id);

}  // namespace vigil::session

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
    std::string principal;  // Kerberos: alice@EXAMPLE.TEST (user may be its short form)
    std::string note;       // for the audit record: how the groups were known, when not plainly
};

// Either the client's identity, or the page to answer with (407 or 429).
struct AuthResult {
    std::optional<Identity> identity;
    std::optional<PageInfo> refusal;
    std::string refused_user;  // refused although the ticket was good (directory down): who it was
};

// `connection`: the identity a Negotiate sign-in gave this connection (set here; a later
// request on it without Proxy-Authorization keeps it).
net::awaitable<AuthResult> authenticate(Authenticator& auth, const boost::beast::http::fields& fields, const address& client,
                                        uint64_t conn_id, std::optional<Identity>& connection);

}  // namespace vigil::session

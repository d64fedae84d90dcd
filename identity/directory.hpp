// Users and groups in an LDAP directory (OpenLDAP, FreeIPA, Active Directory): a user's
// groups, nested groups included, and password checks for Basic sign-in (a simple bind as the
// user). Always over TLS (ldaps:// or StartTLS) with the server's certificate and name checked.
// Lookups are cached (found, not found, and stale copies for when the directory is down) and
// bounded per second. Blocking: run off the workers.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "identity/options.hpp"

namespace vigil::identity {

enum class Lookup { ok, not_found, unavailable };

struct GroupsResult {
    Lookup status = Lookup::unavailable;
    std::vector<std::string> groups;
    bool stale = false;  // served from the cache past cache_ttl because the directory is unreachable
    std::string error;   // why, when not ok (also logged by the caller)
};

class Directory {
public:
    // Checks the options (TLS required, a base DN, a filter with {user} or {principal}); throws
    // IdentityError. Does not connect: a directory down at start is a lookup's problem.
    explicit Directory(DirectoryOptions opts);
    ~Directory();

    // The groups of `user` (the short name) / `principal` (user@REALM, or the name itself).
    GroupsResult groups_of(const std::string& user, const std::string& principal);
    // Basic sign-in: ok with the groups when the directory accepts this password for the user,
    // not_found for an unknown user or a wrong (or empty) password, unavailable otherwise.
    GroupsResult check_password(const std::string& user, const std::string& password);

    uint64_t queries() const;  // directory round trips made (for tests and /metrics)

private:
    struct Conn;
    struct Cached {
        Lookup status;
        std::vector<std::string> groups;
        std::chrono::steady_clock::time_point at;
    };
    bool take_token();
    GroupsResult lookup(const std::string& user, const std::string& principal, std::string* dn);

    DirectoryOptions opts_;
    mutable std::mutex mu_;  // the service connection, the cache, the bucket
    std::unique_ptr<Conn> conn_;
    std::map<std::string, Cached> cache_;
    double tokens_;
    std::chrono::steady_clock::time_point refilled_;
    uint64_t queries_ = 0;
};

// RFC 4515: a value inside a search filter, with * ( ) \ and NUL escaped.
std::string ldap_filter_value(const std::string& value);

}  // namespace vigil::identity

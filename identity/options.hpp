// The settings of the identity services, as the configuration gives them ([auth] and [ldap];
// docs/identity.md). Plain data: config/ fills it, identity/ uses it.
#pragma once

#include <chrono>
#include <string>

namespace vigil::identity {

struct KerberosOptions {
    std::string keytab;     // auth.kerberos_keytab: the service key, HTTP/proxy.fqdn@REALM
    std::string principal;  // auth.kerberos_principal; "" accepts any principal in the keytab
};

struct DirectoryOptions {
    std::string url;                   // ldaps://host:636, or ldap://host:389 with start_tls
    bool start_tls = false;
    std::string ca_file;               // "" = the system's anchors
    std::string bind_dn;               // the service account
    std::string bind_password;         // read from ldap.bind_password_file at load
    std::string base_dn;               // where users are searched
    std::string user_filter = "(uid={user})";  // {user}: the short name, {principal}: user@REALM
    std::string group_base_dn;         // "" = base_dn
    std::string nested = "walk";       // "walk" (OpenLDAP, FreeIPA) or "in-chain" (Active Directory)
    int max_depth = 5;                 // walk: levels of groups in groups followed
    std::string group_name_attribute = "cn";
    std::string member_attribute = "member";
    std::chrono::seconds cache_ttl{300};     // groups found are looked up again after this
    std::chrono::seconds negative_ttl{60};   // "no such user" is remembered this long
    std::chrono::seconds stale_ttl{3600};    // directory unreachable: cached groups serve this long
    int max_lookups_per_second = 50;         // directory queries, all users together
    std::chrono::seconds timeout{5};         // connect and each operation
    bool enabled() const { return !url.empty(); }
};

}  // namespace vigil::identity

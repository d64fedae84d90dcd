// OpenLDAP's libldap, synchronous calls under one mutex: the service account's connection is
// kept and made again after an error; a password check binds on a connection of its own.
#include "identity/directory.hpp"

#include <ldap.h>

#include <algorithm>
#include <set>

#include "identity/kerberos.hpp"

namespace vigil::identity {
namespace {

using Clock = std::chrono::steady_clock;

bool unreachable(int rc) {
    return rc == LDAP_SERVER_DOWN || rc == LDAP_TIMEOUT || rc == LDAP_CONNECT_ERROR || rc == LDAP_UNAVAILABLE ||
           rc == LDAP_BUSY || rc == LDAP_LOCAL_ERROR || rc == LDAP_NO_MEMORY;
}

std::string words(int rc, LDAP* ld = nullptr) {
    std::string out = ldap_err2string(rc);
    char* diag = nullptr;
    if (ld && ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag) == LDAP_OPT_SUCCESS && diag) {
        if (*diag) out += " (" + std::string(diag) + ")";
        ldap_memfree(diag);
    }
    return out;
}

std::string substitute(std::string filter, const std::string& user, const std::string& principal) {
    for (auto [token, value] : {std::pair{"{user}", &user}, std::pair{"{principal}", &principal}}) {
        const std::string escaped = ldap_filter_value(*value);
        for (size_t at; (at = filter.find(token)) != std::string::npos;) filter.replace(at, std::string(token).size(), escaped);
    }
    return filter;
}

}  // namespace

std::string ldap_filter_value(const std::string& value) {
    std::string out;
    for (unsigned char c : value) {
        if (c == '*' || c == '(' || c == ')' || c == '\\' || c == 0) {
            static const char hex[] = "0123456789abcdef";
            out += '\\';
            out += hex[c >> 4];
            out += hex[c & 15];
        } else {
            out += static_cast<char>(c);
        }
    }
    return out;
}

// One LDAP handle, TLS checked, bound (or not yet).
struct Directory::Conn {
    LDAP* ld = nullptr;
    ~Conn() {
        if (ld) ldap_unbind_ext_s(ld, nullptr, nullptr);
    }
    // Connects and binds as `dn` with `password`; the result code, and `error` with the words.
    int open(const DirectoryOptions& o, const std::string& dn, const std::string& password, std::string& error) {
        int rc = ldap_initialize(&ld, o.url.c_str());
        if (rc != LDAP_SUCCESS) {
            error = "ldap.url " + o.url + ": " + words(rc);
            return rc;
        }
        const int version = LDAP_VERSION3, demand = LDAP_OPT_X_TLS_DEMAND, off = 0;
        timeval tv{static_cast<time_t>(o.timeout.count()), 0};
        ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version);
        ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
        ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv);
        ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
        ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand);
        if (!o.ca_file.empty()) ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, o.ca_file.c_str());
        ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &off);  // the TLS options above take effect
        if (o.start_tls) {
            rc = ldap_start_tls_s(ld, nullptr, nullptr);
            if (rc != LDAP_SUCCESS) {
                error = "StartTLS with " + o.url + ": " + words(rc, ld);
                return rc;
            }
        }
        berval cred{static_cast<ber_len_t>(password.size()), const_cast<char*>(password.data())};
        rc = ldap_sasl_bind_s(ld, dn.c_str(), LDAP_SASL_SIMPLE, &cred, nullptr, nullptr, nullptr);
        if (rc != LDAP_SUCCESS) error = "bind as " + dn + " at " + o.url + ": " + words(rc, ld);
        return rc;
    }
    // Entries under `base` matching `filter`: (dn, values of `attr`) pairs; `rc` says how it went.
    std::vector<std::pair<std::string, std::string>> search(const std::string& base, const std::string& filter,
                                                            const char* attr, int limit, int& rc, std::string& error) {
        std::vector<std::pair<std::string, std::string>> out;
        char* attrs[] = {const_cast<char*>(attr), nullptr};
        LDAPMessage* res = nullptr;
        rc = ldap_search_ext_s(ld, base.c_str(), LDAP_SCOPE_SUBTREE, filter.c_str(), attrs, 0, nullptr, nullptr, nullptr,
                               limit, &res);
        if (rc == LDAP_SIZELIMIT_EXCEEDED) rc = LDAP_SUCCESS;  // what came is enough (and named)
        if (rc != LDAP_SUCCESS) {
            error = "search " + filter + " under " + base + ": " + words(rc, ld);
        } else {
            for (LDAPMessage* e = ldap_first_entry(ld, res); e; e = ldap_next_entry(ld, e)) {
                char* dn = ldap_get_dn(ld, e);
                std::string value;
                if (berval** vals = ldap_get_values_len(ld, e, attr)) {
                    if (vals[0]) value.assign(vals[0]->bv_val, vals[0]->bv_len);
                    ldap_value_free_len(vals);
                }
                out.emplace_back(dn ? dn : "", value);
                if (dn) ldap_memfree(dn);
            }
        }
        if (res) ldap_msgfree(res);
        return out;
    }
};

Directory::Directory(DirectoryOptions opts) : opts_(std::move(opts)), tokens_(opts_.max_lookups_per_second) {
    const bool ldaps = opts_.url.rfind("ldaps://", 0) == 0, ldap = opts_.url.rfind("ldap://", 0) == 0;
    if (!ldaps && !ldap) throw IdentityError("ldap.url: expected ldaps://HOST[:PORT] or ldap://HOST[:PORT]");
    if (ldap && !opts_.start_tls)
        throw IdentityError("ldap.url " + opts_.url + ": plain LDAP would send passwords in clear; use ldaps:// or "
                            "set ldap.start_tls = true");
    if (opts_.base_dn.empty()) throw IdentityError("ldap.base_dn is needed");
    if (opts_.user_filter.find("{user}") == std::string::npos && opts_.user_filter.find("{principal}") == std::string::npos)
        throw IdentityError("ldap.user_filter must contain {user} or {principal}");
    if (opts_.nested != "walk" && opts_.nested != "in-chain") throw IdentityError("ldap.nested: expected \"walk\" or \"in-chain\"");
    if (opts_.group_base_dn.empty()) opts_.group_base_dn = opts_.base_dn;
    refilled_ = Clock::now();
}

Directory::~Directory() = default;

uint64_t Directory::queries() const {
    std::lock_guard lock(mu_);
    return queries_;
}

bool Directory::take_token() {
    const auto now = Clock::now();
    tokens_ = std::min<double>(opts_.max_lookups_per_second,
                               tokens_ + std::chrono::duration<double>(now - refilled_).count() * opts_.max_lookups_per_second);
    refilled_ = now;
    if (tokens_ < 1) return false;
    tokens_ -= 1;
    return true;
}

// Under mu_: the user's DN and groups, straight from the directory (one retry on a fresh
// connection when the kept one has gone away).
GroupsResult Directory::lookup(const std::string& user, const std::string& principal, std::string* dn_out) {
    GroupsResult r;
    for (int attempt = 0; attempt < 2; ++attempt) {
        if (!conn_) {
            conn_ = std::make_unique<Conn>();
            int rc = conn_->open(opts_, opts_.bind_dn, opts_.bind_password, r.error);
            ++queries_;
            if (rc != LDAP_SUCCESS) {
                conn_.reset();
                r.status = Lookup::unavailable;  // the service account cannot work: nothing can
                return r;
            }
        }
        int rc = 0;
        ++queries_;
        auto users = conn_->search(opts_.base_dn, substitute(opts_.user_filter, user, principal), "1.1", 2, rc, r.error);
        if (rc != LDAP_SUCCESS) {
            conn_.reset();
            if (unreachable(rc) && attempt == 0) continue;
            r.status = Lookup::unavailable;
            return r;
        }
        if (users.size() != 1) {
            r.status = Lookup::not_found;
            r.error = users.empty() ? "no directory entry matches " + substitute(opts_.user_filter, user, principal)
                                    : "more than one directory entry matches " + substitute(opts_.user_filter, user, principal);
            return r;
        }
        const std::string dn = users[0].first;
        if (dn_out) *dn_out = dn;
        std::set<std::string> names, seen{dn};
        std::vector<std::string> frontier{dn};
        const char* name_attr = opts_.group_name_attribute.c_str();
        const int levels = opts_.nested == "in-chain" ? 1 : opts_.max_depth;
        for (int level = 0; level < levels && !frontier.empty(); ++level) {
            std::string filter;
            if (opts_.nested == "in-chain") {
                // Active Directory follows the nesting itself (LDAP_MATCHING_RULE_IN_CHAIN).
                filter = "(member:1.2.840.113556.1.4.1941:=" + ldap_filter_value(dn) + ")";
            } else {
                for (const auto& d : frontier) filter += "(" + opts_.member_attribute + "=" + ldap_filter_value(d) + ")";
                filter = frontier.size() > 1 ? "(|" + filter + ")" : filter;
            }
            ++queries_;
            auto groups = conn_->search(opts_.group_base_dn, filter, name_attr, 1000, rc, r.error);
            if (rc != LDAP_SUCCESS) {
                conn_.reset();
                r.status = Lookup::unavailable;
                return r;
            }
            frontier.clear();
            for (const auto& [gdn, name] : groups) {
                if (!seen.insert(gdn).second) continue;  // a loop of groups ends here
                if (!name.empty()) names.insert(name);
                frontier.push_back(gdn);
            }
        }
        r.status = Lookup::ok;
        r.groups.assign(names.begin(), names.end());
        r.error.clear();
        return r;
    }
    r.status = Lookup::unavailable;
    return r;
}

GroupsResult Directory::groups_of(const std::string& user, const std::string& principal) {
    std::lock_guard lock(mu_);
    const auto now = Clock::now();
    auto it = cache_.find(principal);
    if (it != cache_.end()) {
        const auto ttl = it->second.status == Lookup::ok ? opts_.cache_ttl : opts_.negative_ttl;
        if (now - it->second.at < ttl) return GroupsResult{it->second.status, it->second.groups, false, ""};
    }
    GroupsResult r;
    if (!take_token()) {
        r.status = Lookup::unavailable;
        r.error = "more than ldap.max_lookups_per_second directory lookups";
    } else {
        r = lookup(user, principal, nullptr);
    }
    if (r.status != Lookup::unavailable) {
        if (cache_.size() > 100000) cache_.clear();  // bounded
        cache_[principal] = Cached{r.status, r.groups, now};
        return r;
    }
    // Unreachable: what was known serves until stale_ttl, then the caller decides.
    if (it != cache_.end() && it->second.status == Lookup::ok && now - it->second.at < opts_.stale_ttl) {
        r.status = Lookup::ok;
        r.groups = it->second.groups;
        r.stale = true;
    }
    return r;
}

GroupsResult Directory::check_password(const std::string& user, const std::string& password) {
    GroupsResult r;
    // An empty password is an unauthenticated bind, which a directory "accepts" (RFC 4513 5.1.2).
    if (password.empty()) {
        r.status = Lookup::not_found;
        r.error = "empty password";
        return r;
    }
    std::string dn;
    {
        std::lock_guard lock(mu_);
        if (!take_token()) {
            r.error = "more than ldap.max_lookups_per_second directory lookups";
            return r;
        }
        r = lookup(user, user, &dn);
        if (r.status == Lookup::ok) cache_[user] = Cached{r.status, r.groups, Clock::now()};
    }
    if (r.status != Lookup::ok) return r;
    Conn as_user;  // its own connection: the service connection stays bound as the service
    std::string error;
    int rc = as_user.open(opts_, dn, password, error);
    {
        std::lock_guard lock(mu_);
        ++queries_;
    }
    if (rc == LDAP_SUCCESS) return r;
    GroupsResult refused;
    refused.status = rc == LDAP_INVALID_CREDENTIALS ? Lookup::not_found : Lookup::unavailable;
    refused.error = error;
    return refused;
}

}  // namespace vigil::identity

// Proxy-Authorization: Negotiate (Kerberos, once per connection) and Basic (the local users,
// then the directory). Ticket checks, PBKDF2 and directory calls run on the auth thread pool,
// never on a worker; Basic checks are cached for auth.cache_seconds under a key that includes
// the password's hash and the ruleset version (a password change or removal takes effect at once).
#include "session/auth.hpp"
#include "core/encoding.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <openssl/evp.h>

#include "core/log.hpp"
#include "identity/directory.hpp"
#include "identity/kerberos.hpp"
#include "wire/framing.hpp"

namespace vigil::session {
namespace {

std::optional<std::pair<std::string, std::string>> parse_basic(std::string_view header) {
    if (header.size() < 6 || !iequals(header.substr(0, 6), "basic ")) return std::nullopt;
    std::string b64(header.substr(6));
    while (!b64.empty() && b64.front() == ' ') b64.erase(b64.begin());
    if (b64.size() > 1024) return std::nullopt;
    auto decoded = core::base64_decode(b64);
    if (!decoded) return std::nullopt;
    std::string& out = *decoded;
    auto colon = out.find(':');
    if (colon == std::string::npos || colon == 0) return std::nullopt;
    return std::pair{out.substr(0, colon), out.substr(colon + 1)};
}

// 407 with a challenge for every method offered, in the configured order.
PageInfo challenge(const Config& cfg, const std::string& reason, uint64_t cid) {
    PageInfo p = page_for(Failure{Fail::auth_required, reason, ""}, cid);
    for (const auto& m : cfg.auth_methods)
        p.proxy_authenticate += (p.proxy_authenticate.empty() ? "" : "\n") +
                                std::string(m == "negotiate" ? "Negotiate" : "Basic realm=\"Vigil\", charset=\"UTF-8\"");
    return p;
}

bool offers(const Config& cfg, std::string_view method) {
    return std::find(cfg.auth_methods.begin(), cfg.auth_methods.end(), method) != cfg.auth_methods.end();
}

// "Negotiate <token>": the token's bytes, or nothing when the field is not a Negotiate one.
std::optional<std::string> parse_negotiate(std::string_view header) {
    if (header.size() < 10 || !iequals(header.substr(0, 10), "negotiate ")) return std::nullopt;
    std::string b64(header.substr(10));
    while (!b64.empty() && b64.front() == ' ') b64.erase(b64.begin());
    return core::base64_decode(b64);
}

void merge(std::vector<std::string>& into, const std::vector<std::string>& more) {
    for (const auto& g : more)
        if (std::find(into.begin(), into.end(), g) == into.end()) into.push_back(g);
}

// Runs `work` on the authenticator's threads and resumes here with its result. (GCC 12: callers
// name the lambda and the awaitable; a temporary with a destructor inside a co_await
// expression is freed twice.)
template <class T, class F>
net::awaitable<T> off_the_workers(Authenticator& auth, F work) {
    auto task = [work = std::move(work)]() -> net::awaitable<T> { co_return work(); };
    auto on_pool = net::co_spawn(auth.pool, std::move(task), net::use_awaitable);
    co_return co_await std::move(on_pool);
}

}  // namespace

bool AuthState::throttled(const std::string& client, int max_failures) {
    std::lock_guard lock(mu_);
    auto it = failures_.find(client);
    if (it == failures_.end()) return false;
    if (std::chrono::steady_clock::now() - it->second.first > std::chrono::minutes(1)) {
        failures_.erase(it);
        return false;
    }
    return it->second.second >= max_failures;
}

void AuthState::failed(const std::string& client) {
    std::lock_guard lock(mu_);
    auto now = std::chrono::steady_clock::now();
    auto& f = failures_[client];
    if (f.second == 0 || now - f.first > std::chrono::minutes(1)) f = {now, 0};
    ++f.second;
    if (failures_.size() > 100000) failures_.clear();  // bounded
}

std::optional<std::vector<std::string>> AuthState::cached(const std::string& key) {
    std::lock_guard lock(mu_);
    auto it = cache_.find(key);
    if (it == cache_.end() || it->second.first < std::chrono::steady_clock::now()) return std::nullopt;
    return it->second.second;
}

void AuthState::remember(const std::string& key, std::vector<std::string> groups, std::chrono::seconds ttl) {
    std::lock_guard lock(mu_);
    if (cache_.size() > 100000) cache_.clear();
    cache_[key] = {std::chrono::steady_clock::now() + ttl, std::move(groups)};
}

Authenticator::Authenticator(const Config& c, Counters& k, const Snapshot<const inspect::RuleSet>& r)
    : cfg(c), counters(k), rules(r) {
    if (offers(c, "negotiate")) {
        if (c.kerberos.keytab.empty())
            throw config::ConfigError("auth.methods offers \"negotiate\": auth.kerberos_keytab is needed (docs/identity.md)");
        try {
            kerberos = std::make_unique<identity::KerberosAcceptor>(c.kerberos);
        } catch (const identity::IdentityError& e) {
            throw config::ConfigError(e.what());
        }
    }
    if (c.ldap.enabled()) {
        try {
            directory = std::make_unique<identity::Directory>(c.ldap);
        } catch (const identity::IdentityError& e) {
            throw config::ConfigError(e.what());
        }
    }
}

Authenticator::~Authenticator() { pool.join(); }

namespace {

// The directory's groups for a signed-in user, or the refusal when the directory is down
// and auth.directory_unavailable says deny. `note` says what the audit record should.
net::awaitable<std::optional<PageInfo>> directory_groups(Authenticator& auth, const std::string& user,
                                                         const std::string& principal, std::vector<std::string>& groups,
                                                         std::string& note, uint64_t cid) {
    std::optional<PageInfo> refusal;
    if (!auth.directory) co_return refusal;
    identity::Directory* dir = auth.directory.get();
    auto lookup = [dir, user, principal] { return dir->groups_of(user, principal); };
    auto task = off_the_workers<identity::GroupsResult>(auth, std::move(lookup));
    auto found = co_await std::move(task);
    if (found.status == identity::Lookup::ok) {
        merge(groups, found.groups);
        if (found.stale) {
            note = "directory unreachable: cached groups";
            log_warn("directory unreachable (" + found.error + "); using the cached groups of " + principal, cid);
        }
    } else if (found.status == identity::Lookup::not_found) {
        log_debug("no directory groups for " + principal + ": " + found.error, cid);
    } else if (auth.cfg.directory_unavailable_allow) {
        note = "directory unreachable: signed in without directory groups";
        log_warn("directory unreachable (" + found.error + "); " + principal +
                     " signed in without directory groups (auth.directory_unavailable = allow-authenticated)", cid);
    } else {
        log_warn("directory unreachable (" + found.error + "); refusing " + principal +
                     " (auth.directory_unavailable = deny)", cid);
        refusal = page_for(Failure{Fail::directory_unavailable,
                                   "the company directory cannot be reached to check your groups; try again shortly", ""},
                           cid);
    }
    co_return refusal;
}

}  // namespace

net::awaitable<AuthResult> authenticate(Authenticator& auth, const boost::beast::http::fields& fields, const address& client,
                                        uint64_t cid, std::optional<Identity>& connection) {
    // (GCC 12: no temporaries with destructors inside co_await or co_return expressions.)
    AuthResult result;
    const Config& cfg = auth.cfg;
    if (!cfg.auth_required || any_contains(cfg.auth_exempt_clients, client)) {
        result.identity = Identity{};
        co_return result;
    }
    const std::string header(fields[boost::beast::http::field::proxy_authorization]);
    // Negotiate is connection-based (RFC 4559): later requests on the connection need no token.
    if (connection && header.empty()) {
        result.identity = connection;
        co_return result;
    }
    const std::string client_key = client.to_string();
    if (auth.state.throttled(client_key, cfg.auth_max_failures)) {
        result.refusal = page_for(fail(auth.counters, Fail::auth_throttled,
                                       "too many failed proxy sign-ins from this address; wait a minute"),
                                  cid);
        co_return result;
    }
    auto rules = auth.rules.load();
    if (auto token = offers(cfg, "negotiate") ? parse_negotiate(header) : std::nullopt) {
        const identity::KerberosAcceptor* krb = auth.kerberos.get();
        auto check = [krb, t = std::move(*token)] { return krb->accept(t); };
        auto task = off_the_workers<identity::KerberosResult>(auth, std::move(check));
        auto accepted = co_await std::move(task);
        if (!accepted.error.empty()) {
            auth.state.failed(client_key);
            count(auth.counters.auth_failed);
            log_warn("Kerberos sign-in from " + client_key + " refused: " + accepted.error, cid);
            result.refusal = challenge(cfg, "your Kerberos ticket was not accepted: " + accepted.error, cid);
            co_return result;
        }
        Identity who;
        who.principal = accepted.principal;
        who.user = cfg.auth_short_names ? identity::short_name(accepted.principal) : accepted.principal;
        who.groups = rules->local_groups(who.user);
        const std::string short_user = identity::short_name(accepted.principal);
        auto placed = directory_groups(auth, short_user, accepted.principal, who.groups, who.note, cid);
        std::optional<PageInfo> refused = co_await std::move(placed);
        if (refused) {
            result.refusal = std::move(refused);
            result.refused_user = who.user;
            co_return result;
        }
        count(auth.counters.auth_ok);
        connection = who;
        result.identity = std::move(who);
        co_return result;
    }
    auto creds = offers(cfg, "basic") ? parse_basic(header) : std::nullopt;
    if (!creds) {
        result.refusal = challenge(cfg, "this gateway needs you to sign in", cid);
        co_return result;
    }
    const std::string key = sha256_hex(creds->first + "\n" + creds->second + "\n" + std::to_string(rules->version()));
    std::optional<std::vector<std::string>> groups = auth.state.cached(key);
    std::string note;
    if (!groups) {
        // PBKDF2 takes tens of milliseconds, a directory bind a round trip: both off the workers.
        auto local = [rules, user = creds->first, pw = creds->second] { return rules->authenticate(user, pw); };
        auto local_task = off_the_workers<std::optional<std::vector<std::string>>>(auth, std::move(local));
        groups = co_await std::move(local_task);
        if (!groups && auth.directory) {
            identity::Directory* dir = auth.directory.get();
            auto bind = [dir, user = creds->first, pw = creds->second] { return dir->check_password(user, pw); };
            auto bind_task = off_the_workers<identity::GroupsResult>(auth, std::move(bind));
            auto checked = co_await std::move(bind_task);
            if (checked.status == identity::Lookup::ok) {
                groups = rules->local_groups(creds->first);
                merge(*groups, checked.groups);
            } else if (checked.status == identity::Lookup::unavailable) {
                log_warn("directory unreachable (" + checked.error + "); cannot check the password of \"" +
                             creds->first.substr(0, 64) + "\"", cid);
                result.refusal = page_for(Failure{Fail::directory_unavailable,
                                                  "the company directory cannot be reached to check your password; "
                                                  "try again shortly", ""},
                                          cid);
                co_return result;
            }
        }
        if (groups) auth.state.remember(key, *groups, cfg.auth_cache);
    }
    if (!groups) {
        auth.state.failed(client_key);
        count(auth.counters.auth_failed);
        log_warn("proxy sign-in failed for user \"" + creds->first.substr(0, 64) + "\" from " + client_key, cid);
        result.refusal = challenge(cfg, "the user name or password is not right", cid);
        co_return result;
    }
    count(auth.counters.auth_ok);
    result.identity = Identity{creds->first, *groups, creds->first, note};
    co_return result;
}

}  // namespace vigil::session

// Proxy-Authorization: Basic. PBKDF2 verification runs on the auth thread pool, never on a
// worker; successful checks are cached for auth.cache_seconds under a key that includes the
// password's hash and the ruleset version (a password change or removal takes effect at once).
#include "session/auth.hpp"
#include "core/encoding.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <openssl/evp.h>

#include "wire/framing.hpp"
#include "core/log.hpp"

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

PageInfo challenge(const std::string& reason, uint64_t cid) {
    PageInfo p = page_for(Failure{Fail::auth_required, reason, ""}, cid);
    p.proxy_authenticate = "Basic realm=\"Vigil\", charset=\"UTF-8\"";
    return p;
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

net::awaitable<AuthResult> authenticate(Authenticator& auth, const boost::beast::http::fields& fields, const address& client,
                                        uint64_t cid) {
    // (GCC 12: no temporaries with destructors inside co_await or co_return expressions.)
    AuthResult result;
    if (!auth.cfg.auth_required || any_contains(auth.cfg.auth_exempt_clients, client)) {
        result.identity = Identity{};
        co_return result;
    }
    const std::string client_key = client.to_string();
    if (auth.state.throttled(client_key, auth.cfg.auth_max_failures)) {
        result.refusal = page_for(fail(auth.counters, Fail::auth_throttled,
                                       "too many failed proxy sign-ins from this address; wait a minute"),
                                  cid);
        co_return result;
    }
    auto creds = parse_basic(fields[boost::beast::http::field::proxy_authorization]);
    if (!creds) {
        result.refusal = challenge("this gateway needs your user name and password", cid);
        co_return result;
    }
    auto rules = auth.rules.load();
    const std::string key = sha256_hex(creds->first + "\n" + creds->second + "\n" + std::to_string(rules->version()));
    std::optional<std::vector<std::string>> groups = auth.state.cached(key);
    if (!groups) {
        // PBKDF2 takes tens of milliseconds: run it on the auth pool and resume here after.
        auto verify = [rules, user = creds->first, pw = creds->second]()
            -> net::awaitable<std::optional<std::vector<std::string>>> { co_return rules->authenticate(user, pw); };
        auto on_pool = net::co_spawn(auth.pool, std::move(verify), net::use_awaitable);
        groups = co_await std::move(on_pool);
        if (groups) auth.state.remember(key, *groups, auth.cfg.auth_cache);
    }
    if (!groups) {
        auth.state.failed(client_key);
        count(auth.counters.auth_failed);
        log_warn("proxy sign-in failed for user \"" + creds->first.substr(0, 64) + "\" from " + client_key, cid);
        result.refusal = challenge("the user name or password is not right", cid);
        co_return result;
    }
    count(auth.counters.auth_ok);
    result.identity = Identity{creds->first, *groups};
    co_return result;
}

}  // namespace vigil::session

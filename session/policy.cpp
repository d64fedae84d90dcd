// Block and warn pages, continue tokens (HMAC-SHA256, time-limited), verdict accounting.
#include "session/policy.hpp"

#include <chrono>

#include <openssl/crypto.h>
#include <openssl/hmac.h>

#include "core/encoding.hpp"
#include "core/log.hpp"

namespace vigil::session {
namespace {

constexpr std::string_view kParam = "vigil-continue=";

std::string sign(const Policy& policy, const std::string& client, const std::string& host, long expiry) {
    std::string msg = client + "\n" + host + "\n" + std::to_string(expiry);
    unsigned char mac[32];
    unsigned int len = 0;
    HMAC(EVP_sha256(), policy.warn_key.data(), static_cast<int>(policy.warn_key.size()),
         reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), mac, &len);
    return hex(mac, len);
}

const char* grant_name(const std::string& key) {
    return key.rfind("origin-certificate:", 0) == 0 ? "vigil_cert_grant" : "vigil_grant";
}

bool is_grant_name(std::string_view name) { return name == "vigil_grant" || name == "vigil_cert_grant"; }

long now_seconds() {
    return static_cast<long>(
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

}  // namespace

void WarnAllowances::allow(const std::string& client, const std::string& host, std::chrono::seconds d) {
    std::lock_guard lock(mu_);
    if (until_.size() > 100000) until_.clear();  // bounded; clearing only re-shows warn pages
    until_[client + " " + host] = std::chrono::steady_clock::now() + d;
}

bool WarnAllowances::allowed(const std::string& client, const std::string& host) {
    std::lock_guard lock(mu_);
    auto it = until_.find(client + " " + host);
    return it != until_.end() && it->second > std::chrono::steady_clock::now();
}

PageInfo block_page(const inspect::Verdict& v, const std::string& url, uint64_t cid) {
    PageInfo p;
    p.status = 403;
    p.title = "This page is blocked";
    p.reason = v.reason.empty() ? "blocked by policy" : v.reason;
    p.host = url.size() > 300 ? url.substr(0, 300) + "…" : url;
    p.code = v.error ? "inspection_error" : "blocked";
    p.action = PageAction::block;
    p.rule = v.rule;
    p.category = v.category;
    p.conn_id = cid;
    return p;
}

PageInfo warn_page(const Policy& policy, const inspect::Verdict& v, const std::string& url, const std::string& client,
                   const std::string& host, uint64_t cid) {
    PageInfo p = block_page(v, url, cid);
    p.title = "Are you sure you want to continue?";
    p.reason = "this site is flagged: " + v.reason;
    p.code = "warn";
    p.action = PageAction::warn;
    long expiry = now_seconds() + 600;  // the link itself is short-lived
    std::string token = std::to_string(expiry) + "." + sign(policy, client, host, expiry);
    p.continue_url = url + (url.find('?') == std::string::npos ? "?" : "&") + std::string(kParam) + token;
    return p;
}

std::optional<bool> take_continue_token(Policy& policy, std::string& target, const std::string& client,
                                        const std::string& host) {
    auto pos = target.find(kParam);
    if (pos == std::string::npos || pos == 0 || (target[pos - 1] != '?' && target[pos - 1] != '&'))
        return std::nullopt;
    auto end = target.find('&', pos);
    std::string token = target.substr(pos + kParam.size(), end == std::string::npos ? std::string::npos
                                                                                    : end - pos - kParam.size());
    // Remove "?param" / "&param" and keep the rest of the query intact.
    std::string rest = end == std::string::npos ? "" : target.substr(end + 1);
    target = target.substr(0, pos - 1) + (rest.empty() ? "" : std::string(1, target[pos - 1]) + rest);
    auto dot = token.find('.');
    if (dot == std::string::npos) return false;
    long expiry = 0;
    try {
        expiry = std::stol(token.substr(0, dot));
    } catch (const std::exception&) {
        return false;
    }
    std::string want = sign(policy, client, host, expiry);
    std::string got = token.substr(dot + 1);
    if (expiry < now_seconds() || got.size() != want.size() || CRYPTO_memcmp(got.data(), want.data(), got.size()) != 0)
        return false;
    policy.warned.allow(client, host, policy.warn_duration);
    return true;
}

std::string grant_cookie(const Policy& policy, const std::string& client, const std::string& key, bool secure) {
    const long expiry = now_seconds() + static_cast<long>(policy.warn_duration.count());
    // "grant\n" keeps a grant's signature apart from a link's over the same client and host.
    return std::string(grant_name(key)) + "=" + std::to_string(expiry) + "." + sign(policy, client, "grant\n" + key, expiry) +
           "; Path=/; Max-Age=" + std::to_string(policy.warn_duration.count()) + "; HttpOnly; SameSite=Lax" +
           (secure ? "; Secure" : "");
}

bool has_grant(Policy& policy, const boost::beast::http::fields& fields, const std::string& client,
               const std::string& key) {
    const std::string want_name = grant_name(key);
    for (auto [it, end] = fields.equal_range(boost::beast::http::field::cookie); it != end; ++it) {
        std::string_view rest = it->value();
        while (!rest.empty()) {
            const size_t semi = rest.find(';');
            std::string_view pair = trim(rest.substr(0, semi));
            rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
            const size_t eq = pair.find('=');
            if (eq == std::string_view::npos || pair.substr(0, eq) != want_name) continue;
            const std::string_view value = pair.substr(eq + 1);
            const size_t dot = value.find('.');
            if (dot == std::string_view::npos || dot == 0 || dot > 12) continue;
            long expiry = 0;
            for (char c : value.substr(0, dot)) {
                if (c < '0' || c > '9') expiry = -1;
                if (expiry >= 0) expiry = expiry * 10 + (c - '0');
            }
            if (expiry < now_seconds()) continue;
            const std::string want = sign(policy, client, "grant\n" + key, expiry);
            const std::string_view got = value.substr(dot + 1);
            if (got.size() != want.size() || CRYPTO_memcmp(got.data(), want.data(), got.size()) != 0) continue;
            policy.warned.allow(client, key, std::chrono::seconds(expiry - now_seconds()));
            return true;
        }
    }
    return false;
}

std::string without_grants(std::string_view cookie) {
    std::string out;
    while (!cookie.empty()) {
        const size_t semi = cookie.find(';');
        std::string_view pair = trim(cookie.substr(0, semi));
        cookie = semi == std::string_view::npos ? std::string_view() : cookie.substr(semi + 1);
        if (pair.empty() || is_grant_name(pair.substr(0, pair.find('=')))) continue;
        out += (out.empty() ? "" : "; ") + std::string(pair);
    }
    return out;
}

inspect::Headers header_list(const boost::beast::http::fields& fields) {
    inspect::Headers h;
    for (const auto& f : fields) h.emplace_back(f.name_string(), f.value());
    return h;
}

std::vector<std::string> split_groups(const std::string& joined) {
    std::vector<std::string> out;
    for (size_t a = 0; !joined.empty() && a != std::string::npos;) {
        size_t b = joined.find(',', a);
        out.push_back(joined.substr(a, b == std::string::npos ? std::string::npos : b - a));
        a = b == std::string::npos ? b : b + 1;
    }
    return out;
}

void note_verdict(Counters& counters, const inspect::Verdict& v, const std::string& url, uint64_t cid) {
    if (!v.monitored.empty()) {
        count(counters.monitored);
        std::string names;
        for (const auto& m : v.monitored) names += (names.empty() ? "" : ",") + m;
        log_info("monitor " + url + ": " + names, cid);
    }
    if (v.action == inspect::Action::monitor && v.monitored.empty()) {
        count(counters.monitored);
        log_info("monitor " + url + ": " + v.reason, cid);
    }
}

}  // namespace vigil::session

// Block and warn pages, continue tokens (HMAC-SHA256, time-limited), verdict accounting.
#include "gateway/inspection.hpp"

#include <chrono>

#include <openssl/crypto.h>
#include <openssl/hmac.h>

#include "gateway/log.hpp"

namespace vigil::gateway {
namespace {

constexpr std::string_view kParam = "vigil-continue=";

std::string hex(const unsigned char* p, size_t n) {
    static const char* d = "0123456789abcdef";
    std::string out;
    for (size_t i = 0; i < n; ++i) out += d[p[i] >> 4], out += d[p[i] & 15];
    return out;
}

std::string sign(const Gateway& gw, const std::string& client, const std::string& host, long expiry) {
    std::string msg = client + "\n" + host + "\n" + std::to_string(expiry);
    unsigned char mac[32];
    unsigned int len = 0;
    HMAC(EVP_sha256(), gw.warn_key.data(), static_cast<int>(gw.warn_key.size()),
         reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), mac, &len);
    return hex(mac, len);
}

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

std::string full_url(const std::string& scheme, const Authority& a, const std::string& target) {
    std::string host = a.host.find(':') != std::string::npos ? "[" + a.host + "]" : a.host;
    bool default_port = (scheme == "https" && a.port == 443) || (scheme == "http" && a.port == 80);
    return scheme + "://" + host + (default_port ? "" : ":" + std::to_string(a.port)) + target;
}

PageInfo block_page(const inspect::Verdict& v, const std::string& url, uint64_t cid) {
    PageInfo p;
    p.status = 403;
    p.title = "This page is blocked";
    p.reason = v.reason.empty() ? "blocked by policy" : v.reason;
    p.host = url.size() > 300 ? url.substr(0, 300) + "…" : url;
    p.code = v.error ? "inspection_error" : "blocked";
    p.rule = v.rule;
    p.category = v.category;
    p.conn_id = cid;
    return p;
}

PageInfo warn_page(Gateway& gw, const inspect::Verdict& v, const std::string& url, const std::string& client,
                   const std::string& host, uint64_t cid) {
    PageInfo p = block_page(v, url, cid);
    p.title = "Are you sure you want to continue?";
    p.reason = "this site is flagged: " + v.reason;
    p.code = "warn";
    long expiry = now_seconds() + 600;  // the link itself is short-lived
    std::string token = std::to_string(expiry) + "." + sign(gw, client, host, expiry);
    p.continue_url = url + (url.find('?') == std::string::npos ? "?" : "&") + std::string(kParam) + token;
    return p;
}

std::optional<bool> take_continue_token(Gateway& gw, std::string& target, const std::string& client,
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
    std::string want = sign(gw, client, host, expiry);
    std::string got = token.substr(dot + 1);
    if (expiry < now_seconds() || got.size() != want.size() || CRYPTO_memcmp(got.data(), want.data(), got.size()) != 0)
        return false;
    gw.warned.allow(client, host, gw.cfg.warn_duration);
    return true;
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

void note_verdict(Gateway& gw, const inspect::Verdict& v, const std::string& url, uint64_t cid) {
    if (!v.monitored.empty()) {
        bump(gw.counters.monitored);
        std::string names;
        for (const auto& m : v.monitored) names += (names.empty() ? "" : ",") + m;
        log_info("monitor " + url + ": " + names, cid);
    }
    if (v.action == inspect::Action::monitor && v.monitored.empty()) {
        bump(gw.counters.monitored);
        log_info("monitor " + url + ": " + v.reason, cid);
    }
}

}  // namespace vigil::gateway

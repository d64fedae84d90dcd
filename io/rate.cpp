// Token buckets for bandwidth limits.
#include "io/rate.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <stdexcept>


namespace vigil::io {

TokenBucket::TokenBucket(int64_t bytes_per_s)
    : rate_(bytes_per_s),
      burst_(std::max(static_cast<double>(bytes_per_s) / 4, 16.0 * 1024)),
      tokens_(burst_),
      last_(clock::now()) {}

std::chrono::nanoseconds TokenBucket::take(size_t n, clock::time_point now) {
    std::lock_guard lock(mu_);
    const double elapsed = std::chrono::duration<double>(now - last_).count();
    if (elapsed > 0) {
        tokens_ = std::min(burst_, tokens_ + elapsed * static_cast<double>(rate_));
        last_ = now;
    }
    tokens_ -= static_cast<double>(n);
    if (tokens_ >= 0) return std::chrono::nanoseconds(0);
    return std::chrono::nanoseconds(static_cast<int64_t>(-tokens_ / static_cast<double>(rate_) * 1e9));
}

bool TokenBucket::full(clock::time_point now) {
    std::lock_guard lock(mu_);
    return tokens_ + std::chrono::duration<double>(now - last_).count() * static_cast<double>(rate_) >= burst_;
}

std::shared_ptr<TokenBucket> RateBuckets::get(const std::string& key, int64_t bytes_per_s) {
    std::lock_guard lock(mu_);
    auto& slot = buckets_[key];
    if (slot) return slot;
    slot = std::make_shared<TokenBucket>(bytes_per_s);
    auto out = slot;
    // Now and then, forget buckets nobody uses that have refilled: a new one is the same.
    if (++inserts_ % 1024 == 0) {
        const auto now = TokenBucket::clock::now();
        std::erase_if(buckets_, [&](auto& kv) { return kv.second.use_count() == 1 && kv.second->full(now); });
    }
    return out;
}

size_t RateBuckets::size() {
    std::lock_guard lock(mu_);
    return buckets_.size();
}

void Throttle::bind(RateBuckets& buckets, const RateLimits& limits, const std::string& client_ip,
                    const std::vector<std::string>& groups) {
    std::string key = client_ip;
    for (const auto& g : groups) key += "\n" + g;
    if (key == bound_) return;
    bound_ = std::move(key);
    for (auto& b : buckets_) b.clear();
    static const char* kDir[] = {" down", " up"};
    for (int d = 0; d < 2; ++d) {
        if (limits.client_rate > 0) buckets_[d].push_back(buckets.get("client " + client_ip + kDir[d], limits.client_rate));
        for (const auto& g : groups)
            if (auto it = limits.group_rates.find(g); it != limits.group_rates.end())
                buckets_[d].push_back(buckets.get("group " + g + kDir[d], it->second));
    }
}

size_t Throttle::chunk(Direction d, size_t cap) const {
    for (const auto& b : buckets_[d]) cap = std::min(cap, std::max<size_t>(1024, static_cast<size_t>(b->rate() / 16)));
    return cap;
}

std::chrono::nanoseconds Throttle::take(Direction d, size_t n) {
    std::chrono::nanoseconds wait(0);
    const auto now = TokenBucket::clock::now();
    for (auto& b : buckets_[d]) wait = std::max(wait, b->take(n, now));
    return wait;
}

int64_t parse_rate(const std::string& text) {
    std::string s;
    for (char c : text)
        if (!std::isspace(static_cast<unsigned char>(c))) s += c;
    if (s.size() > 2 && s.compare(s.size() - 2, 2, "/s") == 0) s.resize(s.size() - 2);
    size_t digits = 0;
    while (digits < s.size() && (std::isdigit(static_cast<unsigned char>(s[digits])) || s[digits] == '.')) ++digits;
    if (digits == 0 || digits > 15) throw std::invalid_argument("expected a rate such as \"2MB\", \"512KiB\" or \"10Mbit\"");
    double value = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + digits, value);
    if (ec != std::errc() || end != s.data() + digits)  // every digit and dot is the number's
        throw std::invalid_argument("expected a rate such as \"2MB\", \"512KiB\" or \"10Mbit\"");
    const std::string unit = s.substr(digits);
    static const std::pair<const char*, double> kUnits[] = {
        {"", 1},          {"B", 1},           {"KB", 1e3},       {"MB", 1e6},       {"GB", 1e9},
        {"KiB", 1024.0},  {"MiB", 1048576.0}, {"GiB", 1073741824.0},
        {"kbit", 1e3 / 8}, {"Kbit", 1e3 / 8}, {"Mbit", 1e6 / 8}, {"Gbit", 1e9 / 8}};
    for (const auto& [name, mult] : kUnits) {
        if (unit != name) continue;
        const double bytes = value * mult;
        if (bytes == 0) return 0;  // off
        if (bytes < 1024) throw std::invalid_argument("below the smallest limit, 1KiB per second (0 turns it off)");
        if (bytes > 1e12) throw std::invalid_argument("above the largest limit, 1TB per second");
        return static_cast<int64_t>(bytes);
    }
    throw std::invalid_argument("unknown unit \"" + unit + "\" (B, KB, MB, GB, KiB, MiB, GiB, kbit, Mbit, Gbit)");
}

}  // namespace vigil::io

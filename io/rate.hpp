// Internal: bandwidth limits (limits.client_rate, limits.group_rate) as token buckets shared by
// all workers. A transfer takes tokens for the bytes it moved and learns how long to wait before
// moving more; the waiting is the caller's (an asio timer), never a blocked worker thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace vigil::io {

// limits.client_rate and limits.group_rate (bytes per second; 0 or absent: unlimited).
struct RateLimits {
    int64_t client_rate = 0;
    std::map<std::string, int64_t> group_rates;
};

class TokenBucket {
public:
    using clock = std::chrono::steady_clock;
    explicit TokenBucket(int64_t bytes_per_s);
    // Takes n bytes (the balance may go below zero) and returns how long until it is back at
    // zero, i.e. how long the caller waits before moving anything more.
    std::chrono::nanoseconds take(size_t n, clock::time_point now);
    // Whether the bucket has refilled to its burst: forgetting it then changes nothing.
    bool full(clock::time_point now);
    int64_t rate() const { return rate_; }

private:
    std::mutex mu_;
    const int64_t rate_;
    const double burst_;  // a quarter second of the rate, at least 16 KiB
    double tokens_;
    clock::time_point last_;
};

// The buckets by name ("client 10.0.0.5 down", "group staff up"), created on first use and
// forgotten once nobody holds them and they are full again.
class RateBuckets {
public:
    std::shared_ptr<TokenBucket> get(const std::string& key, int64_t bytes_per_s);
    size_t size();

private:
    std::mutex mu_;
    std::unordered_map<std::string, std::shared_ptr<TokenBucket>> buckets_;
    size_t inserts_ = 0;
};

// One client connection's limits, both directions (to the client: downloads; from it: uploads).
class Throttle {
public:
    enum Direction { to_client = 0, from_client = 1 };
    // (Re)binds to the client's and its groups' buckets. No buckets when no limit applies.
    void bind(RateBuckets& buckets, const RateLimits& limits, const std::string& client_ip,
              const std::vector<std::string>& groups);
    bool limited() const { return !buckets_[0].empty(); }
    // The most bytes to move in one read so the pacing stays smooth at low rates.
    size_t chunk(Direction d, size_t cap) const;
    // Charges every bucket; the longest wait wins.
    std::chrono::nanoseconds take(Direction d, size_t n);

private:
    std::vector<std::shared_ptr<TokenBucket>> buckets_[2];
    std::string bound_;  // what bind() last bound, to skip rebinding the same client and groups
};

// "2MB", "512KiB", "10Mbit", "1500000" (bytes per second; "/s" optional) -> bytes per second.
// Throws std::invalid_argument with the reason.
int64_t parse_rate(const std::string& text);

}  // namespace vigil::io

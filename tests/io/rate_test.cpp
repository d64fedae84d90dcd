// Token buckets and rate parsing (the limits through the real gateway: test_traffic.py).
#include "io/rate.hpp"

#include <gtest/gtest.h>

#include <stdexcept>


namespace vigil::io {
namespace {

using namespace std::chrono_literals;
using clock = TokenBucket::clock;

TEST(TokenBucket, BurstThenPacedAtTheRate) {
    TokenBucket b(1'000'000);  // burst: a quarter second, 250,000 bytes
    const auto t0 = clock::now();
    EXPECT_EQ(b.take(250'000, t0), 0ns);
    // 100,000 bytes over the burst: a tenth of a second at 1 MB/s.
    auto wait = b.take(100'000, t0);
    EXPECT_NEAR(std::chrono::duration<double>(wait).count(), 0.1, 0.001);
    // After that tenth of a second the debt is paid; another 50,000 bytes wait 50 ms.
    wait = b.take(50'000, t0 + 100ms);
    EXPECT_NEAR(std::chrono::duration<double>(wait).count(), 0.05, 0.001);
    EXPECT_FALSE(b.full(t0 + 100ms));
    EXPECT_TRUE(b.full(t0 + 400ms));  // 50 ms to pay the debt, 250 ms to refill the burst
}

TEST(TokenBucket, IdleTimeNeverBanksMoreThanTheBurst) {
    TokenBucket b(100'000);  // burst: the 16 KiB floor (a quarter second would be 25,000)
    const auto t0 = clock::now();
    b.take(0, t0 + 3600s);  // an hour idle
    EXPECT_EQ(b.take(25'000, t0 + 3600s), 0ns);
    EXPECT_GT(b.take(1, t0 + 3600s), 0ns);
}

TEST(RateBuckets, OneBucketPerKeyForgottenWhenUnusedAndFull) {
    RateBuckets buckets;
    auto a = buckets.get("client 10.0.0.1 down", 1'000'000);
    EXPECT_EQ(a, buckets.get("client 10.0.0.1 down", 1'000'000));
    EXPECT_NE(a, buckets.get("client 10.0.0.2 down", 1'000'000));
    a->take(10'000'000, clock::now());  // deep in debt: not full, must be kept
    const size_t kept = 1;
    for (int i = 0; i < 2048; ++i) buckets.get("client other-" + std::to_string(i), 1'000'000);
    // The unused, full buckets were forgotten along the way; the one in debt was not.
    EXPECT_LT(buckets.size(), 2048u);
    EXPECT_GE(buckets.size(), kept);
    EXPECT_EQ(a, buckets.get("client 10.0.0.1 down", 1'000'000));
}

TEST(Throttle, ClientAndEveryLimitedGroupAreCharged) {
    RateLimits cfg;
    cfg.client_rate = 1'000'000;
    cfg.group_rates = {{"staff", 100'000}};
    RateBuckets buckets;
    Throttle t;
    t.bind(buckets, cfg, "10.0.0.9", {"finance", "staff"});
    EXPECT_TRUE(t.limited());
    EXPECT_EQ(t.chunk(Throttle::to_client, 65536), 100'000u / 16);  // the slowest bucket sets the chunk
    EXPECT_EQ(t.take(Throttle::to_client, 16 * 1024), 0ns);         // within both bursts
    EXPECT_GT(t.take(Throttle::to_client, 100'000), 0ns);           // the group's burst is spent
    EXPECT_EQ(t.take(Throttle::from_client, 16 * 1024), 0ns);       // the other direction has its own
    Throttle none;
    cfg.client_rate = 0;
    none.bind(buckets, cfg, "10.0.0.9", {"finance"});
    EXPECT_FALSE(none.limited());
    EXPECT_EQ(none.take(Throttle::to_client, 1'000'000'000), 0ns);
}

TEST(ParseRate, UnitsAndRefusals) {
    EXPECT_EQ(parse_rate("2MB"), 2'000'000);
    EXPECT_EQ(parse_rate("512KiB/s"), 512 * 1024);
    EXPECT_EQ(parse_rate("10Mbit"), 1'250'000);
    EXPECT_EQ(parse_rate("1.5 GB"), 1'500'000'000);
    EXPECT_EQ(parse_rate("4096"), 4096);
    EXPECT_EQ(parse_rate("0"), 0);
    for (const char* bad : {"", "fast", "MB", "5 parsecs", "100B", "-1MB", "2TB", "1..5MB"})
        EXPECT_THROW(parse_rate(bad), std::invalid_argument) << bad;
}

}  // namespace
}  // namespace vigil::io

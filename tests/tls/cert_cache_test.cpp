// Certificate cache: LRU eviction by entries and bytes, single-flight minting, failures not cached.
#include "tls/cert_cache.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace vigil::tls {
namespace {

std::shared_ptr<const MintedCert> fake_cert(size_t bytes) {
    auto c = std::make_shared<MintedCert>();
    c->bytes = bytes;
    c->expires = std::time(nullptr) + 30 * 86400;
    return c;
}

TEST(CertCache, HitsAfterFirstMint) {
    std::atomic<int> mints{0};
    CertCache cache([&](const std::string&) { ++mints; return fake_cert(100); }, {100, 1 << 20, 4});
    auto a = cache.get("a.example");
    auto b = cache.get("a.example");
    EXPECT_EQ(a, b);
    EXPECT_EQ(mints, 1);
    EXPECT_EQ(cache.stats().hits, 1u);
    EXPECT_EQ(cache.stats().misses, 1u);
}

TEST(CertCache, EvictsLeastRecentlyUsedByEntries) {
    std::atomic<int> mints{0};
    CertCache cache([&](const std::string&) { ++mints; return fake_cert(10); }, {4, 1 << 20, 1});
    for (auto h : {"a", "b", "c", "d"}) cache.get(h);
    cache.get("a");  // a is now the most recent; b the least
    cache.get("e");  // evicts b
    EXPECT_EQ(cache.stats().entries, 4u);
    EXPECT_EQ(cache.stats().evictions, 1u);
    int before = mints;
    cache.get("a");
    EXPECT_EQ(mints, before);
    cache.get("b");
    EXPECT_EQ(mints, before + 1);
}

TEST(CertCache, EvictsByBytes) {
    CertCache cache([](const std::string&) { return fake_cert(1000); }, {1000, 3500, 1});
    for (int i = 0; i < 10; ++i) cache.get("h" + std::to_string(i));
    auto st = cache.stats();
    EXPECT_EQ(st.entries, 3u);
    EXPECT_LE(st.bytes, 3500u);
    EXPECT_EQ(st.evictions, 7u);
}

TEST(CertCache, SingleFlightUnderConcurrentFirstRequests) {
    std::atomic<int> mints{0};
    CertCache cache(
        [&](const std::string&) {
            ++mints;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));  // make the race window wide
            return fake_cert(100);
        },
        {});
    std::vector<std::thread> threads;
    std::vector<std::shared_ptr<const MintedCert>> got(100);
    for (int i = 0; i < 100; ++i) threads.emplace_back([&, i] { got[i] = cache.get("burst.example"); });
    for (auto& t : threads) t.join();
    EXPECT_EQ(mints, 1);
    for (const auto& g : got) EXPECT_EQ(g, got[0]);
    EXPECT_EQ(cache.stats().mints, 1u);
}

TEST(CertCache, FailuresReachWaitersAndAreNotCached) {
    std::atomic<int> calls{0};
    CertCache cache(
        [&](const std::string&) -> std::shared_ptr<const MintedCert> {
            if (++calls == 1) throw TlsError("boom");
            return fake_cert(1);
        },
        {});
    EXPECT_THROW(cache.get("x"), TlsError);
    EXPECT_NE(cache.get("x"), nullptr);
    EXPECT_EQ(calls, 2);
}

TEST(CertCache, RemintsNearExpiry) {
    std::atomic<int> mints{0};
    CertCache cache(
        [&](const std::string&) {
            ++mints;
            auto c = std::make_shared<MintedCert>();
            c->expires = std::time(nullptr) + 3600;  // inside the 24 h renewal window
            return std::shared_ptr<const MintedCert>(c);
        },
        {});
    cache.get("soon.example");
    cache.get("soon.example");
    EXPECT_EQ(mints, 2);
}

}  // namespace
}  // namespace vigil::tls

// Transaction IDs: the UUIDv7 layout, time order, and no repeats across threads.
#include "core/txid.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace vigil::core {
namespace {

TEST(TransactionId, IsAUuidVersion7CarryingItsTime) {
    const auto before = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    const std::string id = new_transaction_id();
    // 8-4-4-4-12 lower-case hex, version 7, variant 10 (no std::regex: GCC 12 warns inside it).
    ASSERT_EQ(id.size(), 36u) << id;
    for (size_t i = 0; i < id.size(); ++i) {
        if (i == 8 || i == 13 || i == 18 || i == 23) EXPECT_EQ(id[i], '-') << id;
        else EXPECT_TRUE((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')) << id;
    }
    EXPECT_EQ(id[14], '7') << id;
    EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << id;
    auto t = transaction_id_time(id);
    ASSERT_TRUE(t);
    EXPECT_GE(*t, before);
    EXPECT_LE(*t, before + 1000);
    std::string upper = id;
    for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    EXPECT_EQ(transaction_id_time(upper), t);
    EXPECT_FALSE(transaction_id_time("4711"));
    EXPECT_FALSE(transaction_id_time("0193a8f4-6c1e-4a3b-9f41-2c5d8e9a0b17"));  // version 4, not an ID of ours
    EXPECT_FALSE(transaction_id_time("0193a8f4-6c1e-7a3b-9f41-2c5d8e9a0bzz"));
}

TEST(TransactionId, NoRepeatsAcrossThreadsAndBursts) {
    std::set<std::string> seen;
    std::mutex mu;
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            std::vector<std::string> mine;
            for (int i = 0; i < 20000; ++i) mine.push_back(new_transaction_id());  // many per millisecond
            std::lock_guard lock(mu);
            seen.insert(mine.begin(), mine.end());
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(seen.size(), 80000u);
}

}  // namespace
}  // namespace vigil::core

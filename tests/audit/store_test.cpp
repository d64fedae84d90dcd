// The audit store's hourly roll-ups: stats from them equal counting the rows, across partial
// hours, after pruning, after migrating a version 1 log; a roll-up edited by hand fails verify.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>

#include "audit/store.hpp"
#include "audit/writer.hpp"

namespace vigil::audit {
namespace {

constexpr int64_t kHour = 3'600'000;
constexpr int64_t kT0 = 1'800'000'000'000 / kHour * kHour;  // an hour boundary

std::vector<Record> sample(int n) {
    std::vector<Record> out;
    for (int i = 0; i < n; ++i) {
        Record r;
        r.kind = i % 17 == 0 ? "system" : "transaction";
        r.ts_ms = kT0 + int64_t(i) * 97'000;  // ~37 records an hour over ~7 hours
        r.host = "h" + std::to_string(i % 7) + ".example";
        r.user = i % 3 ? "alice" : "";
        r.category = i % 5 ? "news" : "malware";
        r.action = i % 5 ? "allow" : "block";
        r.rule = i % 5 ? "" : "block-malware";
        r.bytes_from_client = i;
        r.bytes_to_client = 1000 + i;
        out.push_back(r);
    }
    return out;
}

// Counting the rows directly: what `stats --exact` does.
std::map<std::string, StatRow> exact(Store& s, const std::string& dim, int64_t since, int64_t until) {
    std::map<std::string, StatRow> out;
    const std::string key = dim == "hour" ? "CAST(ts_ms / 3600000 AS TEXT)" : dim;
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(s.db(), ("SELECT " + key + ", count(*), sum(bytes_from_client), sum(bytes_to_client), sum(action = 'block') "
                                "FROM records WHERE kind <> 'system' AND kind <> 'checkpoint' AND ts_ms >= ? AND ts_ms < ? GROUP BY 1").c_str(),
                       -1, &st, nullptr);
    sqlite3_bind_int64(st, 1, since);
    sqlite3_bind_int64(st, 2, until);
    while (sqlite3_step(st) == SQLITE_ROW)
        out[reinterpret_cast<const char*>(sqlite3_column_text(st, 0))] =
            StatRow{sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3), sqlite3_column_int64(st, 4)};
    sqlite3_finalize(st);
    return out;
}

class AuditStore : public ::testing::Test {
protected:
    std::filesystem::path dir = std::filesystem::temp_directory_path() / ("vigil-store-" + std::to_string(::getpid()));
    std::string path = (dir / "audit.db").string();
    void SetUp() override { std::filesystem::create_directories(dir); }
    void TearDown() override { std::filesystem::remove_all(dir); }
    void expect_rollups_match(Store& s) {
        EXPECT_EQ(s.verify_rollups(), "");
        EXPECT_EQ(s.verify_rollups(1), "");  // by SQL
        for (const std::string dim : {"host", "category", "user", "rule", "action", "hour"})
            for (auto [since, until] : std::vector<std::pair<int64_t, int64_t>>{
                     {0, kT0 + 100 * kHour}, {kT0 + kHour / 3, kT0 + 5 * kHour + 123}, {kT0 + 2 * kHour, kT0 + 3 * kHour},
                     {kT0 + 10, kT0 + 20}, {kT0 + 2 * kHour + 5, kT0 + 4 * kHour}})
                EXPECT_EQ(s.stats(dim, since, until), exact(s, dim, since, until)) << dim << " " << since << " " << until;
    }
};

TEST_F(AuditStore, RollupsAgreeWithTheRowsInEveryWindow) {
    auto s = Store::open(path, Store::Mode::create);
    EXPECT_TRUE(s->has_rollups());
    auto recs = sample(300);
    s->append(std::vector<Record>(recs.begin(), recs.begin() + 100));  // batches that split hours
    s->append(std::vector<Record>(recs.begin() + 100, recs.end()));
    EXPECT_EQ(s->stats("action", 0, kT0 + 100 * kHour)["block"].count, 56);
    expect_rollups_match(*s);
}

TEST_F(AuditStore, AMissingRollupRowFailsVerifyInMemoryAndBySql) {
    auto s = Store::open(path, Store::Mode::create);
    s->append(sample(200));
    ASSERT_EQ(sqlite3_exec(s->db(), "DELETE FROM rollup WHERE dim = 'user' AND hour = (SELECT max(hour) FROM rollup)"
                                    " AND key = (SELECT min(key) FROM rollup WHERE dim = 'user')", nullptr, nullptr, nullptr),
              SQLITE_OK);
    ASSERT_EQ(sqlite3_changes(s->db()), 1);
    const auto v = s->verify();
    EXPECT_TRUE(v.ok);  // the chain
    EXPECT_NE(v.rollups.find("user roll-up for"), std::string::npos) << v.rollups;
    EXPECT_NE(v.rollups.find("is missing for records that exist"), std::string::npos) << v.rollups;
    EXPECT_EQ(s->verify_rollups(1), v.rollups);
}

TEST_F(AuditStore, PruneKeepsRollupsTrue) {
    auto s = Store::open(path, Store::Mode::create);
    s->append(sample(300));
    EXPECT_GT(s->prune(kT0 + 2 * kHour + kHour / 2), 0);  // mid-hour
    EXPECT_TRUE(s->verify().ok);
    expect_rollups_match(*s);
}

TEST_F(AuditStore, EditedRollupFailsVerifyAndVersionOneLogsAreMigrated) {
    {
        auto s = Store::open(path, Store::Mode::create);
        s->append(sample(200));
        ASSERT_EQ(sqlite3_exec(s->db(), "UPDATE rollup SET n = n + 1 WHERE dim = 'host' AND key = 'h3.example' AND hour = "
                                        "(SELECT min(hour) FROM rollup)", nullptr, nullptr, nullptr), SQLITE_OK);
        EXPECT_EQ(sqlite3_changes(s->db()), 1);
        EXPECT_NE(s->verify_rollups().find("host roll-up for \"h3.example\""), std::string::npos) << s->verify_rollups();
        // A log with more roll-up rows than are summed in memory is checked by SQL: same answer.
        EXPECT_EQ(s->verify_rollups(1), s->verify_rollups());
        EXPECT_EQ(s->verify().rollups, s->verify_rollups());
        EXPECT_TRUE(s->verify().ok);  // the chain itself is untouched
        // Back to a version 1 log: no roll-up table.
        ASSERT_EQ(sqlite3_exec(s->db(), "DROP TABLE rollup; PRAGMA user_version = 1;", nullptr, nullptr, nullptr), SQLITE_OK);
    }
    {
        auto ro = Store::open(path, Store::Mode::read_only);
        EXPECT_FALSE(ro->has_rollups());
        EXPECT_EQ(ro->stats("host", 0, kT0 + 100 * kHour), exact(*ro, "host", 0, kT0 + 100 * kHour));  // from the rows
    }
    auto s = Store::open(path, Store::Mode::read_write);  // the writer's open migrates
    EXPECT_TRUE(s->has_rollups());
    expect_rollups_match(*s);
}

TEST_F(AuditStore, VersionThreeLogsGainTheTransactionIdAndKeepTheirHashes) {
    {
        auto s = Store::open(path, Store::Mode::create);
        s->append(sample(20));
        ASSERT_EQ(sqlite3_exec(s->db(), "ALTER TABLE records DROP COLUMN txid; PRAGMA user_version = 3;", nullptr,
                               nullptr, nullptr),
                  SQLITE_OK);
    }
    {
        auto ro = Store::open(path, Store::Mode::read_only);
        auto v = ro->verify();
        EXPECT_TRUE(v.ok) << v.problem;
    }
    auto s = Store::open(path, Store::Mode::read_write);
    auto rows = sample(1);
    rows[0].txid = "0193a8f4-6c1e-7a3b-9f41-2c5d8e9a0b17";
    s->append(rows);
    auto v = s->verify();
    EXPECT_TRUE(v.ok) << v.problem;
    EXPECT_EQ(v.rows, 21);
    // Hashed once set: changing it breaks the chain.
    ASSERT_EQ(sqlite3_exec(s->db(), "UPDATE records SET txid = 'x' WHERE id = 21", nullptr, nullptr, nullptr), SQLITE_OK);
    EXPECT_FALSE(s->verify().ok);
}

TEST_F(AuditStore, VersionTwoLogsGainTheCacheColumnAndKeepTheirHashes) {
    {
        auto s = Store::open(path, Store::Mode::create);
        s->append(sample(50));
        // Back to a version 2 log: no cache column (nor the later transaction ID).
        ASSERT_EQ(sqlite3_exec(s->db(),
                               "ALTER TABLE records DROP COLUMN txid; ALTER TABLE records DROP COLUMN cache; "
                               "PRAGMA user_version = 2;",
                               nullptr, nullptr, nullptr),
                  SQLITE_OK);
    }
    {
        auto ro = Store::open(path, Store::Mode::read_only);  // review of an old log: read as if the column were there
        auto v = ro->verify();
        EXPECT_TRUE(v.ok) << v.problem;
        EXPECT_EQ(v.rows, 50);
    }
    auto s = Store::open(path, Store::Mode::read_write);  // the writer's open migrates
    auto rows = sample(2);
    rows[0].cache = "HIT";
    s->append(rows);
    auto v = s->verify();
    EXPECT_TRUE(v.ok) << v.problem;
    EXPECT_EQ(v.rows, 52);
    // The column is hashed once set: editing it breaks the chain.
    ASSERT_EQ(sqlite3_exec(s->db(), "UPDATE records SET cache = 'MISS' WHERE cache = 'HIT'", nullptr, nullptr, nullptr),
              SQLITE_OK);
    EXPECT_FALSE(s->verify().ok);
}

TEST_F(AuditStore, WritersFieldViewHashesLikeTheStoredValues) {
    ASSERT_EQ(record_columns().size(), kColumnCount);
    Record r = sample(3)[1];
    r.duration_ms = -5;
    r.conn_id = ~uint64_t(0) >> 1;
    r.client_ip = "2001:db8::1";
    r.client_port = 65535;
    r.group = "finance";
    r.method = "GET";
    r.url = std::string("https://x.example/\n1:a\n", 22);
    r.status = 403;
    r.reason = "r";
    r.sni = "x.example";
    r.user_agent = "ua";
    r.scan_result = "matched";
    r.cache = "REVALIDATED";
    const FieldView view(r);
    const auto values = record_values(r);
    for (size_t c = 0; c < kColumnCount; ++c) EXPECT_EQ(view.text[c], values[c]) << record_columns()[c];
    std::string h;
    chain_hash(kGenesisHash, view, h);
    EXPECT_EQ(h, chain_hash(kGenesisHash, values));
}

TEST_F(AuditStore, CheckpointerCopiesTheWalWhileTheWriterRuns) {
    WriterOptions o;
    o.path = path;
    o.wal_limit = 1 << 20;  // the checkpointer starts at 512 KiB
    Writer w(o);
    const auto records = sample(20000);
    for (const auto& r : records) w.submit(r);
    for (int i = 0; i < 500 && w.written() < records.size(); ++i) usleep(10'000);
    ASSERT_EQ(w.written(), records.size());
    // SQLite's own checkpoint is off on the writer's connection; only the checkpointer's
    // thread can have grown the database file (the rows alone are several MiB).
    uintmax_t size = 0;
    for (int i = 0; i < 500 && (size = std::filesystem::file_size(path)) < 2'000'000; ++i) usleep(10'000);
    EXPECT_GE(size, 2'000'000u);
    w.close();
    auto s = Store::open(path, Store::Mode::read_only);
    const auto v = s->verify();
    EXPECT_TRUE(v.ok) << v.problem;
    EXPECT_EQ(v.rows, 20000);
    expect_rollups_match(*s);
}

TEST_F(AuditStore, WalStaysBoundedWhileTheWriterIsFlooded) {
    // Records as fast as a thread can submit them: the checkpointer alone never catches up
    // with a writer committing every few ms, so the bound's pause must do it.
    WriterOptions o;
    o.path = path;
    o.wal_limit = 1 << 20;
    o.idle_truncate = std::chrono::milliseconds(300);
    Writer w(o);
    const auto records = sample(2000);
    uintmax_t peak = 0;
    const std::string wal = path + "-wal";
    for (int round = 0; round < 100; ++round) {
        for (const auto& r : records) w.submit(r);
        std::error_code ec;
        peak = std::max(peak, std::filesystem::file_size(wal, ec) * !ec);
    }
    for (int i = 0; i < 1000 && w.written() < 200000u; ++i) usleep(10'000);
    ASSERT_EQ(w.written(), 200000u);
    EXPECT_GT(w.wal_resets(), 0u);
    EXPECT_LT(peak, 3u << 20) << "the WAL grew to " << peak << " bytes";
    // Idle: truncated to nothing.
    for (int i = 0; i < 300 && w.wal_bytes() > 0; ++i) usleep(10'000);
    EXPECT_EQ(w.wal_bytes(), 0u);
    w.close();
    auto s = Store::open(path, Store::Mode::read_only);
    EXPECT_EQ(s->verify().rows, 200000);
}

TEST_F(AuditStore, DurabilitySettingsReachSqlite) {
    auto s = Store::open(path, Store::Mode::create);
    auto pragma = [&](const char* sql) {
        sqlite3_stmt* st = nullptr;
        sqlite3_prepare_v2(s->db(), sql, -1, &st, nullptr);
        int64_t v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
        sqlite3_finalize(st);
        return v;
    };
    s->durability(8 << 20, true);
    EXPECT_EQ(pragma("PRAGMA synchronous"), 2);  // FULL: every commit fsynced (audit.sync = true)
    EXPECT_EQ(pragma("PRAGMA journal_size_limit"), 8 << 20);
    s->durability(32 << 20, false);
    EXPECT_EQ(pragma("PRAGMA synchronous"), 1);  // NORMAL
}

TEST_F(AuditStore, PreviousRunIsUncleanWithoutAStop) {
    auto event = [](const std::string& action) {
        Record r;
        r.kind = "system";
        r.action = action;
        r.ts_ms = 1000;
        return r;
    };
    {
        auto s = Store::open(path, Store::Mode::create);
        EXPECT_FALSE(s->previous_run().unclean);  // a new log: nothing ran before
        s->append({event("start"), event("stop"), event("start")});
        auto later = sample(3);
        for (auto& r : later) r.ts_ms = 5000;
        s->append(later);
        const auto prev = s->previous_run();
        EXPECT_TRUE(prev.unclean);
        EXPECT_EQ(prev.last_ms, 5000);
        s->append({event("stop")});
        EXPECT_FALSE(s->previous_run().unclean);
    }
}

}  // namespace
}  // namespace vigil::audit

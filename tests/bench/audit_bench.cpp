// Audit writer throughput (records/s through the real Writer into SQLite), and a generator of
// large audit logs for timing vigil-audit queries (tests/bench/audit_query_bench.sh).
#include <benchmark/benchmark.h>
#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "audit/record.hpp"
#include "audit/writer.hpp"

namespace {

using namespace vigil::audit;

Record sample(int64_t i, int64_t now_ms) {
    Record r;
    r.kind = "transaction";
    r.ts_ms = now_ms - (1000000 - i) * 80;  // spread over ~22 hours
    r.duration_ms = i % 500;
    r.conn_id = static_cast<uint64_t>(i);
    r.client_ip = "10.0." + std::to_string(i % 200) + "." + std::to_string(i % 250 + 1);
    r.client_port = 40000 + static_cast<int>(i % 20000);
    r.user = "user" + std::to_string(i % 300);
    r.method = "GET";
    r.scheme = "https";
    r.host = "www.site" + std::to_string(i % 5000) + ".example";
    r.port = 443;
    r.url = "https://" + r.host + "/path/" + std::to_string(i) + "?q=" + std::to_string(i * 7);
    r.status = i % 50 ? 200 : 403;
    r.bytes_from_client = i % 1000;
    r.bytes_to_client = 1000 + i % 100000;
    r.category = i % 50 ? "news" : "malware";
    r.action = i % 50 ? "allow" : "block";
    r.rule = i % 50 ? "allow-all" : "block-malware";
    r.tls_mode = "bump";
    r.sni = r.host;
    r.origin_cert = "ok";
    r.client_tls = "TLSv1.3 TLS_AES_256_GCM_SHA384";
    r.origin_tls = r.client_tls;
    r.user_agent = "Mozilla/5.0 (X11; Linux x86_64)";
    r.content_type = "text/html";
    r.scan_result = "clean";
    return r;
}

int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

void BM_WriterThroughput(benchmark::State& state) {
    const int64_t n = state.range(0);
    for (auto _ : state) {
        state.PauseTiming();
        auto dir = std::filesystem::temp_directory_path() / ("vigil-audit-bench-" + std::to_string(::getpid()));
        std::filesystem::create_directories(dir);
        WriterOptions o;
        o.path = (dir / "audit.db").string();
        o.wal_limit = static_cast<uint64_t>(state.range(1)) << 20;  // 4096 MiB: no bound in effect
        const int64_t t0 = now_ms();
        std::vector<Record> recs;
        for (int64_t i = 0; i < n; ++i) recs.push_back(sample(i, t0));
        state.ResumeTiming();
        {
            Writer w(o);
            for (auto& r : recs) w.submit(std::move(r));
            w.close();  // everything committed
        }
        state.PauseTiming();
        std::filesystem::remove_all(dir);
        state.ResumeTiming();
    }
    state.counters["records_per_s"] = benchmark::Counter(static_cast<double>(n) * state.iterations(), benchmark::Counter::kIsRate);
}
// Args: records, audit.wal_limit in MiB (32 = the default bound; 4096 = as before the bound,
// when the WAL grew by the writer's whole rate).
BENCHMARK(BM_WriterThroughput)->Args({200000, 32})->Args({200000, 4096})->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);


// The ceiling under the writer: SQLite alone inserting the same rows (28 columns and two
// 64-character hashes, transactions of 32,768, no hashing, no queue, no roll-ups) into a
// table with the first N of the log's five indexes. What the writer can never exceed here.
void BM_SqliteCeiling(benchmark::State& state) {
    static const char* kIndexes[] = {"CREATE INDEX i_ts ON records(ts_ms);", "CREATE INDEX i_host ON records(host);",
                                     "CREATE INDEX i_user ON records(user);", "CREATE INDEX i_action ON records(action);",
                                     "CREATE INDEX i_rule ON records(rule);"};
    const int64_t n = 200000;
    const int64_t t0 = now_ms();
    std::vector<Record> recs;
    for (int64_t i = 0; i < n; ++i) recs.push_back(sample(i, t0));
    const std::string hash(64, 'a');
    for (auto _ : state) {
        state.PauseTiming();
        auto dir = std::filesystem::temp_directory_path() / ("vigil-sqlite-bench-" + std::to_string(::getpid()));
        std::filesystem::create_directories(dir);
        sqlite3* db = nullptr;
        sqlite3_open((dir / "ceiling.db").c_str(), &db);
        std::string sql = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -65536;"
                          "CREATE TABLE records(id INTEGER PRIMARY KEY";
        std::string ins = "INSERT INTO records VALUES (NULL";
        for (const auto& c : record_columns()) sql += ", " + c, ins += ", ?";
        sql += ", prev_hash, hash);";
        ins += ", ?, ?)";
        for (int i = 0; i < state.range(0); ++i) sql += kIndexes[i];
        sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
        sqlite3_stmt* st = nullptr;
        sqlite3_prepare_v2(db, ins.c_str(), -1, &st, nullptr);
        state.ResumeTiming();
        for (int64_t i = 0; i < n; ++i) {
            if (i % 32768 == 0) sqlite3_exec(db, i ? "COMMIT; BEGIN" : "BEGIN", nullptr, nullptr, nullptr);
            const FieldView v(recs[static_cast<size_t>(i)]);
            for (size_t c = 0; c < kColumnCount; ++c) {
                if (integer_column(c)) sqlite3_bind_int64(st, static_cast<int>(c) + 1, v.number[c]);
                else sqlite3_bind_text(st, static_cast<int>(c) + 1, v.text[c].data(), static_cast<int>(v.text[c].size()), SQLITE_STATIC);
            }
            sqlite3_bind_text(st, kColumnCount + 1, hash.data(), 64, SQLITE_STATIC);
            sqlite3_bind_text(st, kColumnCount + 2, hash.data(), 64, SQLITE_STATIC);
            if (sqlite3_step(st) != SQLITE_DONE) state.SkipWithError(sqlite3_errmsg(db));
            sqlite3_reset(st);
        }
        sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
        state.PauseTiming();
        sqlite3_finalize(st);
        sqlite3_close(db);
        std::filesystem::remove_all(dir);
        state.ResumeTiming();
    }
    state.counters["records_per_s"] = benchmark::Counter(static_cast<double>(n) * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_SqliteCeiling)->DenseRange(0, 5)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);

}  // namespace

int main(int argc, char** argv) {
    // `audit_bench --fill FILE N`: write N sample records (for query timing), then exit.
    if (argc == 4 && std::strcmp(argv[1], "--fill") == 0) {
        WriterOptions o;
        o.path = argv[2];
        Writer w(o);
        const int64_t n = std::stoll(argv[3]), t0 = now_ms();
        for (int64_t i = 0; i < n; ++i) w.submit(sample(i, t0));
        w.close();
        std::cout << "wrote " << w.written() << " records to " << argv[2] << "\n";
        return 0;
    }
    benchmark::Initialize(&argc, argv);
    benchmark::RunSpecifiedBenchmarks();
    return 0;
}

// The audit database: schema, opening (read-only for review, read-write for the writer and
// prune), appending chained records, and walking the chain.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "audit/record.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace vigil::audit {

class AuditError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Counts for one key of `vigil-audit stats`.
struct StatRow {
    int64_t count = 0, bytes_in = 0, bytes_out = 0, blocked = 0;
    bool operator==(const StatRow&) const = default;
};

class Store {
public:
    enum class Mode { read_only, read_write, create };
    static std::unique_ptr<Store> open(const std::string& path, Mode mode);
    ~Store();
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;

    sqlite3* db() const { return db_; }
    // Appends records in one transaction, chaining each to the previous row. Throws on failure
    // (nothing is written then, and the chain head is unchanged).
    void append(const std::vector<Record>& records);
    const std::string& last_hash() const { return last_hash_; }

    // The writer's connection: stop checkpointing at commit and count the WAL's frames
    // instead, so another connection can copy the WAL into the database meanwhile.
    void defer_checkpoints();
    int wal_frames() const { return wal_frames_; }
    // The writer's settings: the WAL file is cut back to `wal_limit` bytes when it restarts;
    // `sync` makes every commit durable against power loss too (synchronous = FULL).
    void durability(uint64_t wal_limit, bool sync);
    // Copies committed WAL frames into the database without waiting for anyone (PASSIVE).
    // True when every frame was copied (the next commit then starts the WAL from its start).
    bool checkpoint();
    // Copies every frame and truncates the WAL file to zero bytes; gives up at once (false)
    // when a reader still uses the WAL. For idle moments: it takes the write lock.
    bool truncate_wal();

    // How the gateway's previous run ended, from its own system rows: a `start` with no `stop`
    // after it means it did not stop cleanly (killed, crashed, power lost), and records it had
    // queued may be missing after `last_ms`, the newest record there is.
    struct PreviousRun {
        bool unclean = false;
        int64_t started_ms = 0, last_ms = 0;
    };
    PreviousRun previous_run() const;
    // The `unclean-stop` rows: (time, reason), oldest first.
    std::vector<std::pair<int64_t, std::string>> unclean_stops() const;

    struct VerifyResult {
        bool ok = true;  // the hash chain
        int64_t rows = 0;
        int64_t bad_row = 0;  // first row that does not verify
        std::string problem;
        // The roll-ups against the rows, checked in the same pass when the chain holds: "" when
        // they agree (or the log has none), else the first difference.
        std::string rollups;
    };
    VerifyResult verify() const;

    // stats --by `dim` (host, category, user, rule, action, or hour: keys are hour numbers,
    // ms / 3600000) over records with since_ms <= ts_ms < until_ms, system events and
    // checkpoints excluded. Whole hours come from the roll-up table, partial ones from rows.
    std::map<std::string, StatRow> stats(const std::string& dim, int64_t since_ms, int64_t until_ms) const;
    // Whether the roll-ups agree with the rows; "" when they do, else the first difference.
    // Up to `max_in_memory` roll-up rows are summed in memory during the walk (about 150 MB at
    // the default; a day of a busy gateway, 1,000,000 records over 5,000 hosts, is 122,000);
    // a log with more is checked by SQL instead, slower but on disk.
    static constexpr size_t kRollupsInMemory = 1'000'000;
    std::string verify_rollups(size_t max_in_memory = kRollupsInMemory) const;
    bool has_rollups() const { return has_rollup_; }
    // Deletes records older than `before_ms` and leaves a checkpoint row so the rest verifies.
    int64_t prune(int64_t before_ms);

private:
    explicit Store(sqlite3* db) : db_(db) {}
    // One pass over every row: the chain when `chain`, and the roll-ups derived from the rows.
    VerifyResult walk(bool chain, size_t max_derived) const;
    void exec(const char* sql) const;
    sqlite3* db_;
    sqlite3_stmt* insert_ = nullptr;  // prepared once, reused by every append
    sqlite3_stmt* upsert_ = nullptr;  // roll-up rows, likewise
    bool has_rollup_ = false;
    std::string last_hash_;
    std::atomic<int> wal_frames_{0};
};

}  // namespace vigil::audit

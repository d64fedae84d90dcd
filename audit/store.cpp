// SQLite storage of audit records with a SHA-256 hash chain: opening (and migrating) a log,
// appending batches with their roll-ups, checkpoints, pruning. Review queries are in review.cpp.
#include "audit/store.hpp"

#include "audit/schema.hpp"

#include <sqlite3.h>
#include <sys/stat.h>

#include <cstdlib>
#include <map>
#include <set>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

namespace vigil::audit {
namespace {

using namespace schema;

struct RollupKey {
    int dim;
    int64_t hour;
    std::string_view key;
    bool operator==(const RollupKey&) const = default;
};
struct RollupKeyHash {
    size_t operator()(const RollupKey& k) const {
        return std::hash<std::string_view>()(k.key) ^ (static_cast<size_t>(k.hour) * 0x9e3779b97f4a7c15ULL) ^
               static_cast<size_t>(k.dim);
    }
};

}  // namespace

std::unique_ptr<Store> Store::open(const std::string& path, Mode mode) {
    sqlite3* raw = nullptr;
    // A Store is used by one thread at a time: SQLite's own per-call mutex is not needed.
    int flags = SQLITE_OPEN_NOMUTEX | (mode == Mode::read_only ? SQLITE_OPEN_READONLY
                                       : mode == Mode::create  ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
                                                               : SQLITE_OPEN_READWRITE);
    if (sqlite3_open_v2(path.c_str(), &raw, flags, nullptr) != SQLITE_OK) {
        std::string msg = raw ? sqlite3_errmsg(raw) : "out of memory";
        sqlite3_close(raw);
        throw AuditError(path + ": cannot open audit log: " + msg);
    }
    std::unique_ptr<Store> s(new Store(raw));
    sqlite3_busy_timeout(raw, 5000);
    int version = 0;
    int64_t tables = 0;
    try {
        Stmt v(raw, "PRAGMA user_version");
        if (v.step()) version = v.integer(0);
        Stmt t(raw, "SELECT count(*) FROM sqlite_master");
        if (t.step()) tables = t.integer(0);
    } catch (const AuditError&) {
        throw AuditError(path + ": not a SQLite database");
    }
    if (version == 0) {
        if (tables != 0) throw AuditError(path + ": not a Vigil audit log");
        if (mode != Mode::create) throw AuditError(path + ": not a Vigil audit log (empty database)");
        ::chmod(path.c_str(), 0600);  // browsing history: readable by its owner only
        s->exec("PRAGMA journal_mode = WAL");
        s->exec("BEGIN");
        s->exec(create_sql().c_str());
        s->exec("COMMIT");
        version = kVersion;
    }
    // What the file is comes before which version it is.
    try {
        Stmt m(raw, "SELECT value FROM meta WHERE key = 'schema'");
        if (!m.step() || m.text(0) != "vigil-audit")
            throw AuditError(path + ": not a Vigil audit log");
    } catch (const AuditError&) {
        throw AuditError(path + ": not a Vigil audit log");
    }
    if (version > kVersion)
        throw AuditError(path + ": audit log schema " + std::to_string(version) + " is newer than this program");
    if (version == 1 && mode != Mode::read_only) {
        // Migration: build the roll-ups from the rows already there, in one transaction.
        s->exec("BEGIN IMMEDIATE");
        try {
            s->exec((std::string(kRollupTable) + rebuild_rollup_sql("") + "PRAGMA user_version = 2;").c_str());
            s->exec("COMMIT");
        } catch (...) {
            sqlite3_exec(raw, "ROLLBACK", nullptr, nullptr, nullptr);
            throw;
        }
        version = 2;
    }
    if (version < kVersion) {
        // Schema 3 added the cache column, 4 the transaction ID (empty in older rows, which keep
        // their hashes: empty later columns are not hashed). The writer's open adds them; an
        // older log opened for review reads as if they were there.
        std::string missing_view, alter;
        for (const char* column : {"cache", "txid"}) {
            Stmt has(raw, std::string("SELECT count(*) FROM pragma_table_info('records') WHERE name = '") + column + "'");
            if (has.step() && has.integer(0) > 0) continue;
            missing_view += std::string(", '' AS ") + column;
            alter += std::string("ALTER TABLE records ADD COLUMN ") + column + " TEXT NOT NULL DEFAULT '';";
        }
        if (mode == Mode::read_only) {
            if (!missing_view.empty()) s->exec(("CREATE TEMP VIEW records AS SELECT *" + missing_view + " FROM main.records").c_str());
        } else {
            core::sql::transaction(raw, "BEGIN IMMEDIATE", database_error, [&] {
                s->exec((alter + "PRAGMA user_version = " + std::to_string(kVersion) + ";").c_str());
            });
            version = kVersion;
        }
    }
    s->has_rollup_ = version >= 2;
    // Review reads whole days of rows: memory-mapped pages cost no read() per page.
    s->exec("PRAGMA mmap_size = 4294967296");
    if (mode != Mode::read_only) {
        // WAL + NORMAL: a commit is durable against process crashes without an fsync per batch;
        // a larger page cache keeps the five indexes' hot pages in memory while appending.
        s->exec("PRAGMA synchronous = NORMAL");
        s->exec("PRAGMA cache_size = -65536");
        s->exec("PRAGMA wal_autocheckpoint = 8192");
    }
    Stmt last(raw, "SELECT hash FROM records ORDER BY id DESC LIMIT 1");
    s->last_hash_ = last.step() ? last.text(0) : kGenesisHash;
    return s;
}

Store::~Store() {
    sqlite3_finalize(insert_);
    sqlite3_finalize(upsert_);
    sqlite3_close(db_);
}

Store::PreviousRun Store::previous_run() const {
    // Both through the action index: a crash after millions of rows costs no scan.
    auto newest = [&](const char* action) -> int64_t {
        Stmt q(db_, "SELECT max(id) FROM records WHERE action = ? AND kind = 'system'");
        q.bind(1, std::string_view(action));
        return q.step() ? q.integer(0) : 0;
    };
    PreviousRun out;
    const int64_t start = newest("start"), stop = newest("stop");
    if (start == 0 || stop > start) return out;
    out.unclean = true;
    Stmt began(db_, "SELECT ts_ms FROM records WHERE id = ?");
    began.bind(1, start);
    if (began.step()) out.started_ms = began.integer(0);
    Stmt last(db_, "SELECT ts_ms FROM records ORDER BY id DESC LIMIT 1");
    if (last.step()) out.last_ms = last.integer(0);
    return out;
}

std::vector<std::pair<int64_t, std::string>> Store::unclean_stops() const {
    std::vector<std::pair<int64_t, std::string>> out;
    Stmt q(db_, "SELECT ts_ms, reason FROM records WHERE action = 'unclean-stop' AND kind = 'system' ORDER BY id");
    while (q.step()) out.emplace_back(q.integer(0), q.text(1));
    return out;
}

void Store::durability(uint64_t wal_limit, bool sync) {
    exec(("PRAGMA journal_size_limit = " + std::to_string(wal_limit)).c_str());
    exec(sync ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
}

void Store::defer_checkpoints() {
    // Replaces SQLite's own hook, which is what checkpoints at wal_autocheckpoint frames.
    sqlite3_wal_hook(
        db_,
        [](void* self, sqlite3*, const char*, int frames) {
            static_cast<Store*>(self)->wal_frames_ = frames;
            return SQLITE_OK;
        },
        this);
}

bool Store::checkpoint() {
    int log = 0, copied = 0;
    const int rc = sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY) throw AuditError(std::string("audit checkpoint: ") + sqlite3_errmsg(db_));
    return rc == SQLITE_OK && copied == log;
}

bool Store::truncate_wal() {
    // No waiting here: a reader (vigil-audit, the console) keeps its snapshot, and the writer
    // tries again at its next idle moment.
    sqlite3_busy_timeout(db_, 0);
    int log = 0, copied = 0;
    const int rc = sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_TRUNCATE, &log, &copied);
    sqlite3_busy_timeout(db_, 5000);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY) throw AuditError(std::string("audit checkpoint: ") + sqlite3_errmsg(db_));
    if (rc == SQLITE_OK) wal_frames_ = 0;
    return rc == SQLITE_OK;
}

void Store::exec(const char* sql) const { core::sql::exec(db_, sql, database_error); }

void Store::append(const std::vector<Record>& records) {
    if (records.empty()) return;
    const auto& cols = record_columns();
    if (!insert_) {
        std::string sql = "INSERT INTO records(" + columns_list() + ", prev_hash, hash) VALUES (";
        for (size_t i = 0; i < cols.size() + 2; ++i) sql += i ? ", ?" : "?";
        sql += ")";
        if (sqlite3_prepare_v3(db_, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &insert_, nullptr) != SQLITE_OK)
            throw AuditError(std::string("audit database: ") + sqlite3_errmsg(db_));
    }
    if (!upsert_) {
        const char* sql =
            "INSERT INTO rollup VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(dim, hour, key) DO UPDATE SET "
            "n = n + excluded.n, bytes_in = bytes_in + excluded.bytes_in, bytes_out = bytes_out + excluded.bytes_out, "
            "blocked = blocked + excluded.blocked";
        if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &upsert_, nullptr) != SQLITE_OK)
            throw AuditError(std::string("audit database: ") + sqlite3_errmsg(db_));
    }
    // The batch's roll-up rows, summed in memory first: one upsert per (dim, hour, key). Keys
    // point into the records, which outlive the map.
    std::unordered_map<RollupKey, StatRow, RollupKeyHash> sums;
    for (const auto& r : records) {
        if (r.kind == "system" || r.kind == "checkpoint") continue;
        const std::string* keys[] = {&r.host, &r.category, &r.user, &r.rule, &r.action};  // kRollupDims order
        const bool blocked = r.action == "block";
        for (int d = 0; d < 5; ++d) {
            StatRow& row = sums[{d, r.ts_ms / 3'600'000, *keys[d]}];
            ++row.count;
            row.bytes_in += r.bytes_from_client;
            row.bytes_out += r.bytes_to_client;
            row.blocked += blocked;
        }
    }
    exec("BEGIN IMMEDIATE");
    std::string head = last_hash_, hash;
    try {
        for (const auto& r : records) {
            const FieldView vals(r);
            chain_hash(head, vals, hash);
            // Integer columns as integers (no text conversion in SQLite); text bound in place,
            // valid until the step below.
            for (size_t c = 0; c < kColumnCount; ++c) {
                const int i = static_cast<int>(c) + 1;
                if (integer_column(c)) sqlite3_bind_int64(insert_, i, vals.number[c]);
                else sqlite3_bind_text(insert_, i, vals.text[c].data(), static_cast<int>(vals.text[c].size()), SQLITE_STATIC);
            }
            const int n = static_cast<int>(kColumnCount);
            sqlite3_bind_text(insert_, n + 1, head.data(), static_cast<int>(head.size()), SQLITE_STATIC);
            sqlite3_bind_text(insert_, n + 2, hash.data(), static_cast<int>(hash.size()), SQLITE_STATIC);
            const int rc = sqlite3_step(insert_);
            sqlite3_reset(insert_);
            if (rc != SQLITE_DONE) throw AuditError(std::string("audit insert: ") + sqlite3_errmsg(db_));
            head.swap(hash);
        }
        sqlite3_clear_bindings(insert_);
        for (const auto& [k, row] : sums) {
            const auto& [d, hour, key] = k;
            sqlite3_bind_text(upsert_, 1, kRollupDims[d], -1, SQLITE_STATIC);
            sqlite3_bind_int64(upsert_, 2, hour);
            sqlite3_bind_text(upsert_, 3, key.data(), static_cast<int>(key.size()), SQLITE_STATIC);
            sqlite3_bind_int64(upsert_, 4, row.count);
            sqlite3_bind_int64(upsert_, 5, row.bytes_in);
            sqlite3_bind_int64(upsert_, 6, row.bytes_out);
            sqlite3_bind_int64(upsert_, 7, row.blocked);
            const int rc = sqlite3_step(upsert_);
            sqlite3_reset(upsert_);
            if (rc != SQLITE_DONE) throw AuditError(std::string("audit roll-up: ") + sqlite3_errmsg(db_));
        }
        exec("COMMIT");
    } catch (...) {
        sqlite3_clear_bindings(insert_);
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
    }
    last_hash_ = head;
}

int64_t Store::prune(int64_t before_ms) {
    exec("BEGIN IMMEDIATE");
    try {
        Stmt last(db_, "SELECT id, hash FROM records WHERE ts_ms < ? AND kind <> 'checkpoint' ORDER BY id DESC LIMIT 1");
        last.bind(1, before_ms);
        if (!last.step()) {
            exec("COMMIT");
            return 0;
        }
        int64_t last_id = last.integer(0);
        std::string anchor = last.text(1);
        // The hours whose roll-ups change: rebuilt from the rows that remain, below.
        Stmt span(db_, std::string("SELECT min(ts_ms) / 3600000, max(ts_ms) / 3600000 FROM records WHERE id <= ? AND ") + kCounted);
        span.bind(1, last_id);
        const bool counted = span.step() && !span.is_null(0);
        const int64_t lo = counted ? span.integer(0) : 0, hi = counted ? span.integer(1) : -1;
        Stmt del(db_, "DELETE FROM records WHERE id <= ?");
        del.bind(1, last_id);
        del.step();
        int64_t n = sqlite3_changes(db_);
        if (has_rollup_ && counted) {
            const std::string hours = " AND ts_ms / 3600000 BETWEEN " + std::to_string(lo) + " AND " + std::to_string(hi);
            exec(("DELETE FROM rollup WHERE hour BETWEEN " + std::to_string(lo) + " AND " + std::to_string(hi) + ";" +
                  rebuild_rollup_sql(hours)).c_str());
        }
        Record cp;
        cp.kind = "checkpoint";
        cp.ts_ms = before_ms;
        cp.reason = "pruned " + std::to_string(n) + " rows up to id " + std::to_string(last_id);
        auto vals = record_values(cp);
        std::string sql = "INSERT INTO records(id, " + columns_list() + ", prev_hash, hash) VALUES (?";
        for (size_t i = 0; i < vals.size() + 2; ++i) sql += ", ?";
        sql += ")";
        Stmt ins(db_, sql);
        ins.bind(1, last_id);  // takes the place of the last pruned row
        int i = 2;
        for (const auto& v : vals) ins.bind(i++, v);
        ins.bind(i++, std::string_view("checkpoint"));
        ins.bind(i++, anchor);
        ins.step();
        exec("COMMIT");
        return n;
    } catch (...) {
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
    }
}

}  // namespace vigil::audit

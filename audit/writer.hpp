// The audit writer: a bounded queue that workers submit to, and one thread that batches the
// records into SQLite (and the JSON-lines and syslog sinks). Workers never touch SQLite.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "audit/record.hpp"
#include "audit/store.hpp"

namespace vigil::audit {

struct WriterOptions {
    std::string path;              // audit.path; "" = no SQLite log
    std::string jsonl_path;        // audit.jsonl
    std::string syslog;            // audit.syslog: "udp://host:port" or "tcp://host:port"
    size_t queue_limit = 65536;    // records waiting, plus records held after write errors
    bool overflow_drop = false;    // audit.overflow = drop (default: block = back-pressure)
    std::string url_mode = "full"; // full, strip-query, host-only
    size_t url_max = 2048;
    // The WAL's bound (audit.wal_limit). At half of it the checkpointer thread copies the WAL
    // into the database while the writer goes on; at the bound the writer pauses until a
    // checkpoint has copied every frame, so its next commit starts the WAL from its beginning
    // and cuts the file back to the bound (journal_size_limit).
    uint64_t wal_limit = 32ull << 20;
    bool sync = false;  // audit.sync: fsync each commit (synchronous = FULL)
    // Idle this long, the writer copies the whole WAL back and truncates the file to 0 bytes.
    std::chrono::milliseconds idle_truncate{1000};
};

class Writer {
public:
    explicit Writer(WriterOptions opts);  // opens the sinks; throws AuditError
    ~Writer();                            // drains everything queued, then stops

    // Queues a record. At the bound: waits for room (back-pressure), or drops and counts.
    void submit(Record r);
    // Drains every queued record and stops the thread (idempotent).
    void close();

    // False while writes fail (disk full, file removed); records are kept and retried.
    bool healthy() const { return healthy_; }
    uint64_t written() const { return written_; }
    uint64_t dropped() const { return dropped_; }
    uint64_t failures() const { return failures_; }
    size_t queued() const;
    // How the previous run ended, read when the SQLite log was opened.
    const Store::PreviousRun& previous_run() const { return previous_run_; }
    // Bytes of the SQLite log's write-ahead file now (0 when there is none).
    uint64_t wal_bytes() const;
    // Checkpoints that copied the whole WAL while the writer waited (the WAL bound at work).
    uint64_t wal_resets() const { return wal_resets_; }

private:
    void run();
    void write_batch(std::vector<Record>& batch);
    void send_syslog(const std::vector<Record>& batch);
    void run_checkpoints();
    void bound_wal();
    void truncate_when_idle();

    WriterOptions opts_;
    std::unique_ptr<Store> store_;
    Store::PreviousRun previous_run_;
    int syslog_fd_ = -1;
    bool syslog_tcp_ = false;
    mutable std::mutex mu_;
    std::condition_variable has_work_, has_room_;
    std::deque<Record> queue_;
    bool stopping_ = false;
    std::atomic<bool> healthy_{true};
    std::atomic<uint64_t> written_{0}, dropped_{0}, failures_{0}, wal_resets_{0};
    std::chrono::steady_clock::time_point last_write_{};  // writer thread only
    std::thread thread_;
    // Copies the WAL into the database on its own connection and thread, so the writer's
    // thread only inserts (the checkpoints were a fifth of its time).
    std::unique_ptr<Store> checkpointer_;
    std::mutex ckpt_mu_;
    std::mutex ckpt_run_mu_;  // held while either connection checkpoints (one at a time)
    std::condition_variable ckpt_cv_;
    bool ckpt_wanted_ = false, ckpt_stop_ = false;
    int checkpoint_frames_ = 4096;  // half the WAL bound, in WAL frames
    size_t max_batch_ = 32768;      // records per transaction, from the WAL bound
    int ckpt_asked_at_ = 0;  // WAL frames when the checkpointer was last asked (writer thread only)
    std::thread ckpt_thread_;
};

// Applies audit.url_mode and the length cap to a URL.
std::string shape_url(const std::string& url, const std::string& mode, size_t max_len);

}  // namespace vigil::audit

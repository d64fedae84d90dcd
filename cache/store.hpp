// The HTTP cache's store: an index in memory, bodies in memory and on disk (docs/caching.md).
// No Asio here: the relay asks it questions and hands it finished, scanned responses.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cache/freshness.hpp"
#include "core/counters.hpp"

namespace vigil::cache {

struct Options {
    std::string dir;                 // "" keeps everything in memory
    uint64_t max_bytes = 1ull << 30;         // on disk
    uint64_t memory_bytes = 64ull << 20;     // bodies held in memory
    uint64_t max_object_bytes = 8ull << 20;  // larger responses are not stored
};

// The store: shared by all workers (one mutex, held for index work only). Files are written
// and removed by a thread of its own; a file that cannot be written takes its entry out of
// the index again (pass-through, counted and logged); a file that fails its checksum or
// cannot be parsed is deleted, never served.
class Store {
public:
    Store(Options o, Counters& counters);
    ~Store();
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;

    // The stored variant matching this request's Vary values, with its body; null when none.
    // Reads the body from disk when it is not in memory: find_indexed + load_body.
    std::shared_ptr<const Entry> find(const std::string& url, const Fields& request);
    // The same from the index alone, no disk read: the body may be null (on disk only).
    std::shared_ptr<const Entry> find_indexed(const std::string& url, const Fields& request);
    // `found` (from find_indexed) with its body read from disk and kept in memory; null when
    // the file is gone or damaged (counted cache_corrupt, the entry dropped). Blocking: the
    // gateway calls it on its disk thread, never on a worker.
    std::shared_ptr<const Entry> load_body(const std::shared_ptr<const Entry>& found);
    // Stores (or replaces) a variant. The body must be complete and scanned clean.
    void put(Entry e);
    // Replaces `old` (if it is still stored) by `updated` with the same body: a 304's fields,
    // or a newer ruleset version after a re-scan.
    // Returns the updated entry (also when `old` was meanwhile replaced and it is not stored).
    std::shared_ptr<const Entry> replace(const std::shared_ptr<const Entry>& old, Entry updated);
    void remove(const std::shared_ptr<const Entry>& e);
    // Every variant of the URL (after an unsafe method).
    void invalidate(const std::string& url);

    const Options& options() const { return o_; }
    size_t entries() const;
    uint64_t disk_bytes() const;
    uint64_t memory_bytes() const;
    // Waits until every queued file operation is done (tests, shutdown).
    void flush();

private:
    struct Slot {
        std::shared_ptr<const Entry> entry;
        std::list<std::string>::iterator lru;
        uint64_t file_bytes = 0;  // 0 while not (yet) on disk
    };
    struct Job {
        bool write = true;  // else remove
        std::string id;
        std::shared_ptr<const Entry> entry;  // what the file is to hold (serialised by the writer)
    };

    void load_index();
    void insert_locked(std::shared_ptr<const Entry> e, uint64_t file_bytes);
    void erase_locked(std::string id, bool remove_file);
    void trim_locked();
    void queue_write(const std::shared_ptr<const Entry>& e);
    void run_writer();
    std::string path(const std::string& id) const;
    std::shared_ptr<const std::string> read_body(const Entry& e, std::string& error) const;

    Options o_;
    Counters& counters_;
    mutable std::mutex mu_;
    std::unordered_map<std::string, Slot> slots_;                      // id -> slot
    std::unordered_map<std::string, std::vector<std::string>> by_url_;  // url -> ids
    std::list<std::string> lru_;                                       // most recently used first
    uint64_t disk_bytes_ = 0, memory_bytes_ = 0;
    std::deque<Job> jobs_;
    size_t jobs_running_ = 0;
    bool stop_ = false;
    std::condition_variable wake_, idle_;
    uint64_t write_errors_ = 0;
    std::thread writer_;
};

// The file's bytes for an entry (header, body, checksum) and back. Exposed for tests.
// A stored file starts with this line, then the header's length.
inline constexpr std::string_view kMagic = "VIGILCACHE1\n";
std::string serialize(const Entry& e);
// The entry's file name: a digest of its URL and the request fields it varies on.
std::string entry_id(const std::string& url, const Fields& vary);
// Parses a file's header; with `with_body`, also the body and its checksum. nullopt: corrupt.
std::optional<Entry> parse(std::string_view file, bool with_body);

}  // namespace vigil::cache

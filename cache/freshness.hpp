// The HTTP cache (RFC 9111, a shared cache): which responses may be stored and for how long,
// and the store itself — an index in memory, bodies in memory and on disk (docs/caching.md).
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

#include "core/counters.hpp"
#include "io/address.hpp"

namespace vigil::cache {

using namespace vigil::core;
using io::iequals;
using io::lower;
using io::trim;

// Header fields as received, in order (name as sent, value).
using Fields = std::vector<std::pair<std::string, std::string>>;

// Every line of field `name` (any case), joined with ", "; "" when absent.
std::string field(const Fields& f, std::string_view name);
bool has_field(const Fields& f, std::string_view name);

struct CacheControl {
    bool no_store = false, no_cache = false, private_ = false, public_ = false, must_revalidate = false,
         proxy_revalidate = false, only_if_cached = false, max_stale_any = false, must_understand = false;
    std::optional<int64_t> max_age, s_maxage, min_fresh, max_stale;
};
// Directives are case-insensitive; a duration that is not a number counts as 0 (stale), a
// quoted one is accepted; the first of repeated directives wins.
CacheControl parse_cache_control(std::string_view value);

// IMF-fixdate, RFC 850 and asctime forms (RFC 9110 5.6.7): seconds since the epoch.
std::optional<int64_t> parse_http_date(std::string_view text);
std::string format_http_date(int64_t t);

// One stored response (one variant of a URL). Immutable once in the store: changes replace it.
struct Entry {
    std::string url;           // the primary key: scheme://host:port/target
    int status = 0;
    std::string reason;
    Fields headers;            // end-to-end fields as the origin sent them (no hop-by-hop, no framing)
    Fields vary;               // per field the response varies on: (lower-case name, request's value)
    double request_time = 0;   // when the request went out / the response came in (epoch seconds)
    double response_time = 0;
    int64_t ruleset = 0;       // the ruleset version the body was scanned clean under
    uint64_t body_size = 0;
    std::shared_ptr<const std::string> body;  // null while only on disk
    std::string id;            // hex digest of url and vary values; the file's name
};

// RFC 9111 4.2.1 for a shared cache: s-maxage, max-age, Expires - Date, else heuristic
// (10% of Date - Last-Modified, at most a day) for heuristically cacheable statuses.
double freshness_lifetime(const Entry& e);
// RFC 9111 4.2.3.
double current_age(const Entry& e, double now);

// Why a response to this request may not be stored, or "" when it may (RFC 9111 3, plus
// stricter rules of ours for a shared cache in front of many users: see docs/caching.md).
std::string not_storable(std::string_view method, const Fields& request, int status, const Fields& response);

// The request's values for the fields the response varies on; nullopt for "Vary: *".
std::optional<Fields> vary_values(const Fields& response, const Fields& request);

// RFC 9111 3.2 / 4.3.4: a stored response's fields updated from a 304 (all but those describing
// the stored representation: Content-Length, -Encoding, -Range, -MD5 and ETag).
Fields updated_fields(const Fields& stored, const Fields& from_304);

// Whether the client's own condition (If-None-Match, else If-Modified-Since) holds for the
// stored response, so the answer is 304 Not Modified (RFC 9110 13.1.2, 13.1.3; weak comparison).
bool not_modified(const Fields& request, const Entry& e);

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
std::string serialize(const Entry& e);
// Parses a file's header; with `with_body`, also the body and its checksum. nullopt: corrupt.
std::optional<Entry> parse(std::string_view file, bool with_body);

}  // namespace vigil::cache

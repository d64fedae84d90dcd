// Shipping the audit log to a central collector (rsyslog): RFC 5424 messages over TCP with
// octet-counted framing (RFC 6587), read from the SQLite log itself, which is the spool. Each
// message is one record as JSON with its row id, prev_hash and hash and the gateway's name, so
// the central copy can be deduplicated and every gateway's chain verified there
// (vigil-audit --merged). At least once: the last row id the collector's TCP stack has
// acknowledged is kept in a state file; after a reconnect, shipping resumes after it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace vigil::audit {

struct ShipOptions {
    std::string db_path;     // audit.path: the spool
    std::string target;      // audit.ship = "tcp://host:port"
    std::string gateway;     // audit.ship_name (default: the host name)
    std::string state_path;  // db_path + ".shipped": the last acknowledged row id
    std::chrono::milliseconds retry{1000};
};

// One record as a framed RFC 5424 message: "LEN <134>1 TIME HOST vigil - audit - {json}".
std::string ship_frame(const std::string& gateway, int64_t id, const std::vector<std::string>& values,
                       const std::string& prev_hash, const std::string& hash);

class Shipper {
public:
    explicit Shipper(ShipOptions opts);  // starts the thread; throws AuditError for a bad target
    ~Shipper();                          // ships what it can for up to 2 s more, then stops

    int64_t acked() const { return acked_; }      // the last row id the collector has
    int64_t newest() const { return newest_; }    // the newest row id seen in the log
    bool connected() const { return connected_; }
    uint64_t sent() const { return sent_; }       // messages sent (resends included)

private:
    void run();
    bool ship_some(int fd);
    void save_state();
    void settle();

    ShipOptions opts_;
    std::string host_, port_;
    std::atomic<int64_t> acked_{0}, newest_{0};
    // TCP's acknowledgement says the collector's kernel has the bytes, not that the collector
    // read them: one stopping (rsyslog at SIGTERM) drops what is still in its socket. So a row
    // counts as delivered only once its acknowledgement is kSettle old with the connection
    // still whole; a broken connection resumes after the last such row, and that row is what
    // the state file keeps. Resent rows carry the same hash: the central reader drops them.
    std::deque<std::pair<std::chrono::steady_clock::time_point, int64_t>> unsettled_;
    int64_t settled_ = 0;
    std::atomic<bool> connected_{false};
    std::atomic<uint64_t> sent_{0};
    std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false, woken_ = false;
    std::thread thread_;
};

}  // namespace vigil::audit

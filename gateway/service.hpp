// The service manager's side of the gateway: readiness, status and stopping (systemd's
// sd_notify protocol, Type=notify), and watchdog pings sent only while the gateway is healthy.
// Outside systemd (NOTIFY_SOCKET unset) every call is a no-op.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

namespace vigil::audit {
class Writer;
}
namespace vigil::session {
struct Worker;
}

namespace vigil::gateway {

namespace net = boost::asio;

class ServiceNotifier {
public:
    // `workers` and `audit` (may be null) outlive the notifier; the timer runs on `main`.
    ServiceNotifier(net::io_context& main, std::vector<session::Worker*> workers, audit::Writer* audit);
    ~ServiceNotifier();

    void ready(const std::string& status);  // READY=1: once every listener accepts
    void status(const std::string& status);
    void stopping(const std::string& status);  // STOPPING=1: the drain has begun
    // With WatchdogSec (WATCHDOG_USEC set for this process): pings at a quarter of the
    // interval while every worker thread answers and the audit writer makes progress; when one
    // does not, the pings stop, the reason is logged, and systemd restarts the gateway.
    void start_watchdog();

private:
    void tick();
    std::string unhealthy_reason();

    net::steady_timer timer_;
    std::vector<session::Worker*> workers_;
    audit::Writer* audit_;
    std::chrono::microseconds interval_{0};
    std::unique_ptr<std::atomic<int64_t>[]> beats_;  // per worker: steady ms of its last answer
    uint64_t audit_written_ = 0;
    std::chrono::steady_clock::time_point audit_progress_{};
    std::string said_;  // the last unhealthy reason logged
};

}  // namespace vigil::gateway

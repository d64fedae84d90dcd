// sd_notify from libsystemd: the protocol's messages, and the watchdog's health check.
#include "gateway/service.hpp"

#include <systemd/sd-daemon.h>

#include <boost/asio/post.hpp>

#include "audit/writer.hpp"
#include "core/log.hpp"
#include "session/services.hpp"

namespace vigil::gateway {
namespace {

int64_t steady_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// STATUS= is one line in `systemctl status`.
std::string one_line(std::string s) {
    for (char& c : s)
        if (c == '\n') c = ' ';
    return s;
}

}  // namespace

ServiceNotifier::ServiceNotifier(net::io_context& main, std::vector<session::Worker*> workers, audit::Writer* audit)
    : timer_(main), workers_(std::move(workers)), audit_(audit),
      beats_(std::make_unique<std::atomic<int64_t>[]>(workers_.size())) {
    for (size_t i = 0; i < workers_.size(); ++i) beats_[i] = steady_ms();
}

ServiceNotifier::~ServiceNotifier() = default;

void ServiceNotifier::ready(const std::string& status) {
    sd_notify(0, ("READY=1\nSTATUS=" + one_line(status)).c_str());
}

void ServiceNotifier::status(const std::string& status) { sd_notify(0, ("STATUS=" + one_line(status)).c_str()); }

void ServiceNotifier::stopping(const std::string& status) {
    timer_.cancel();
    sd_notify(0, ("STOPPING=1\nSTATUS=" + one_line(status)).c_str());
}

void ServiceNotifier::start_watchdog() {
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return;
    interval_ = std::chrono::microseconds(usec);
    audit_progress_ = std::chrono::steady_clock::now();
    core::log_info("systemd watchdog: pinging every " + std::to_string(usec / 4000) + " ms while healthy (WatchdogSec " +
                   std::to_string(usec / 1000000) + " s)");
    tick();
}

// Why the gateway should not be vouched for, or "".
std::string ServiceNotifier::unhealthy_reason() {
    const int64_t now = steady_ms();
    const int64_t limit = std::chrono::duration_cast<std::chrono::milliseconds>(interval_).count() / 2;
    for (size_t i = 0; i < workers_.size(); ++i)
        if (now - beats_[i].load() > limit)
            return "worker thread " + std::to_string(i) + " has not answered for " + std::to_string(now - beats_[i].load()) +
                   " ms";
    if (audit_) {
        // A writer that fails (disk full) is alive and retrying: /readyz says so, a restart
        // would not help. One that holds records and neither writes nor fails is stuck.
        const uint64_t written = audit_->written();
        if (written != audit_written_ || audit_->queued() == 0 || !audit_->healthy()) {
            audit_written_ = written;
            audit_progress_ = std::chrono::steady_clock::now();
        } else if (std::chrono::steady_clock::now() - audit_progress_ > interval_ / 2) {
            return "the audit writer holds " + std::to_string(audit_->queued()) + " records and has written none for " +
                   std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                      std::chrono::steady_clock::now() - audit_progress_).count()) + " ms";
        }
    }
    return {};
}

void ServiceNotifier::tick() {
    std::string why = unhealthy_reason();
    if (why.empty()) {
        sd_notify(0, "WATCHDOG=1");
        if (!said_.empty()) core::log_info("systemd watchdog: healthy again, pings resumed");
        said_.clear();
    } else if (said_.empty()) {  // said once per episode, not at every tick
        core::log_error("systemd watchdog: not pinging: " + why);
        said_ = why;
    }
    // Each worker answers through its own queue: a thread stuck in a handler never does.
    for (size_t i = 0; i < workers_.size(); ++i)
        net::post(workers_[i]->ioc, [this, i] { beats_[i] = steady_ms(); });
    timer_.expires_after(interval_ / 4);
    timer_.async_wait([this](boost::system::error_code ec) {
        if (!ec) tick();
    });
}

}  // namespace vigil::gateway

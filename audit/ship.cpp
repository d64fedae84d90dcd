// The shipper's loop: connect, send the rows after the acknowledged one in batches, wait until
// the kernel says the collector's TCP stack has every byte (SIOCOUTQ = 0), save that id, go on.
// A broken connection loses nothing: the rows after the saved id are sent again (duplicates
// carry the same hash, and the central reader drops them).
#include "audit/ship.hpp"

#include <linux/sockios.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "audit/record.hpp"
#include "audit/schema.hpp"
#include "core/log.hpp"

namespace vigil::audit {
namespace {

constexpr int kBatch = 500;
constexpr auto kSettle = std::chrono::seconds(5);

int connect_to(const std::string& host, const std::string& port, std::string& error) {
    addrinfo hints{}, *res = nullptr;
    hints.ai_socktype = SOCK_STREAM;
    if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0) {
        error = "cannot resolve " + host + ": " + gai_strerror(rc);
        return -1;
    }
    int fd = -1;
    for (addrinfo* a = res; a; a = a->ai_next) {
        fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) continue;
        if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
        error = "cannot connect to " + host + ":" + port + ": " + std::strerror(errno);
        ::close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    }
    return fd;
}

bool send_all(int fd, const std::string& data) {
    for (size_t at = 0; at < data.size();) {
        ssize_t n = ::send(fd, data.data() + at, data.size() - at, MSG_NOSIGNAL);
        if (n <= 0) return false;
        at += size_t(n);
    }
    return true;
}

// Waits until the peer's TCP stack has acknowledged every byte sent (or the connection broke,
// or `limit` passed): the collector has the messages.
bool wait_acknowledged(int fd, std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
        int queued = 0;
        if (ioctl(fd, SIOCOUTQ, &queued) != 0) return false;
        if (queued == 0) return true;
        pollfd p{fd, POLLRDHUP, 0};
        if (::poll(&p, 1, 5) > 0 && (p.revents & (POLLRDHUP | POLLERR | POLLHUP))) return false;
        if (std::chrono::steady_clock::now() > deadline) return false;
    }
}


}  // namespace

std::string ship_frame(const std::string& gateway, int64_t id, const std::vector<std::string>& values,
                       const std::string& prev_hash, const std::string& hash) {
    nlohmann::ordered_json j;
    j["gateway"] = gateway;
    j["id"] = id;
    const auto& cols = record_columns();
    for (size_t i = 0; i < cols.size() && i < values.size(); ++i) j[cols[i]] = values[i];  // exact text: hashable
    j["prev_hash"] = prev_hash;
    j["hash"] = hash;
    const std::string ts = values.empty() ? "-" : iso_time(std::stoll(values[0].empty() ? "0" : values[0]));
    const std::string msg = "<134>1 " + ts + " " + (gateway.empty() ? "-" : gateway) + " vigil - audit - " +
                            j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return std::to_string(msg.size()) + " " + msg;
}

Shipper::Shipper(ShipOptions opts) : opts_(std::move(opts)) {
    const std::string t = opts_.target;
    if (t.rfind("tcp://", 0) != 0) throw AuditError("audit.ship: expected tcp://HOST:PORT");
    const std::string rest = t.substr(6);
    const auto colon = rest.rfind(':');
    if (colon == std::string::npos || colon == 0) throw AuditError("audit.ship: expected tcp://HOST:PORT");
    host_ = rest.substr(0, colon);
    if (host_.size() > 2 && host_.front() == '[') host_ = host_.substr(1, host_.size() - 2);
    port_ = rest.substr(colon + 1);
    if (opts_.state_path.empty()) opts_.state_path = opts_.db_path + ".shipped";
    if (std::ifstream in(opts_.state_path); in) {
        int64_t id = 0;
        if (in >> id && id > 0) acked_ = settled_ = id;
    }
    thread_ = std::thread([this] {
        pthread_setname_np(pthread_self(), "vigil-ship");
        run();
    });
}

Shipper::~Shipper() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
}

void Shipper::save_state() {
    const std::string tmp = opts_.state_path + ".tmp";
    {
        std::ofstream out(tmp, std::ios::trunc);
        out << settled_ << "\n";
        if (!out.flush()) return;
    }
    std::error_code ec;
    std::filesystem::rename(tmp, opts_.state_path, ec);
}

// Rows acknowledged at least kSettle ago on a connection that is still whole are delivered.
void Shipper::settle() {
    const auto now = std::chrono::steady_clock::now();
    const int64_t before = settled_;
    while (!unsettled_.empty() && now - unsettled_.front().first >= kSettle) {
        settled_ = unsettled_.front().second;
        unsettled_.pop_front();
    }
    if (settled_ != before) save_state();
}

// Sends the next batch and waits for it to be acknowledged. False: the connection is broken.
bool Shipper::ship_some(int fd) {
    auto store = Store::open(opts_.db_path, Store::Mode::read_only);
    if (schema::Stmt newest(store->db(), "SELECT max(id) FROM records"); newest.step()) newest_ = newest.integer(0);
    schema::Stmt st(store->db(), "SELECT id, " + schema::columns_list() + ", prev_hash, hash FROM records WHERE id > ? "
                                 "ORDER BY id LIMIT " + std::to_string(kBatch));
    st.bind(1, acked_.load());
    const int ncols = static_cast<int>(record_columns().size());
    std::string batch;
    int64_t last = 0;
    int n = 0;
    while (st.step()) {
        std::vector<std::string> vals;
        for (int i = 0; i < ncols; ++i) vals.push_back(st.text(1 + i));
        last = st.integer(0);
        batch += ship_frame(opts_.gateway, last, vals, st.text(1 + ncols), st.text(2 + ncols));
        ++n;
    }
    if (last > newest_) newest_ = last;
    if (n == 0) return true;
    if (!send_all(fd, batch) || !wait_acknowledged(fd, std::chrono::seconds(10))) return false;
    sent_ += uint64_t(n);
    acked_ = last;
    unsettled_.emplace_back(std::chrono::steady_clock::now(), last);
    settle();
    return true;
}

void Shipper::run() {
    int fd = -1;
    std::string said;
    auto wait = [&](std::chrono::milliseconds d) {
        std::unique_lock lock(mu_);
        cv_.wait_for(lock, d, [&] { return stop_ || woken_; });
        woken_ = false;
        return stop_;
    };
    std::chrono::steady_clock::time_point stop_by{};
    for (;;) {
        {
            std::lock_guard lock(mu_);
            if (stop_ && stop_by == std::chrono::steady_clock::time_point{})
                stop_by = std::chrono::steady_clock::now() + std::chrono::seconds(2);
        }
        if (stop_by != std::chrono::steady_clock::time_point{} && std::chrono::steady_clock::now() > stop_by) break;
        if (fd < 0) {
            std::string error;
            fd = connect_to(host_, port_, error);
            if (fd < 0) {
                connected_ = false;
                if (error != said) core::log_warn("audit.ship: " + error + "; records stay in the log and are sent later");
                said = error;
                wait(opts_.retry);
                continue;
            }
            connected_ = true;
            if (!said.empty()) core::log_info("audit.ship: connected to " + opts_.target + "; resuming after row " +
                                              std::to_string(acked_.load()));
            said.clear();
        }
        bool ok = true;
        int64_t before = acked_;
        try {
            ok = ship_some(fd);
        } catch (const std::exception& e) {
            core::log_warn(std::string("audit.ship: reading the log: ") + e.what());
        }
        if (!ok) {
            ::close(fd);
            fd = -1;
            connected_ = false;
            // What the collector may not have read yet is sent again.
            acked_ = settled_;
            unsettled_.clear();
            said = "the connection to " + opts_.target + " broke";
            core::log_warn("audit.ship: " + said + "; resending after row " + std::to_string(acked_.load()));
            continue;
        }
        settle();
        if (acked_ == before) {
            if (stop_by != std::chrono::steady_clock::time_point{}) break;  // all shipped: done
            wait(std::chrono::milliseconds(200));
        }
    }
    if (fd >= 0) ::close(fd);
}

}  // namespace vigil::audit

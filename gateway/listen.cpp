// The listening side of the process (gateway/listen.hpp).
#include "gateway/listen.hpp"

#include <sched.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <fstream>
#include <thread>

namespace vigil::gateway {
namespace {

using reuse_port = net::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

}  // namespace

tcp::endpoint parse_listen(const std::string& listen) {
    // Port 0 is allowed here (the kernel picks one), unlike in request authorities.
    auto colon = listen.rfind(':');
    std::string host = listen.substr(0, colon == std::string::npos ? 0 : colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    error_code ec;
    auto addr = net::ip::make_address(host, ec);
    unsigned long port = 70000;
    try {
        size_t used = 0;
        port = std::stoul(listen.substr(colon + 1), &used);
        if (used != listen.size() - colon - 1) port = 70000;
    } catch (const std::exception&) {
    }
    if (colon == std::string::npos || ec || port > 65535)
        throw ConfigError("proxy.listen: expected ADDRESS:PORT with an IP address, got \"" + listen + "\"");
    return {addr, static_cast<unsigned short>(port)};
}


// The CPUs this process may use, for proxy.threads = 0: its affinity mask (taskset, a
// container's cpuset), further capped by a cgroup v2 CPU quota on its cgroup or an ancestor
// (cpu.max "200000 100000" = 2, rounded up). The machine's CPU count alone would start a
// worker per host CPU in a container given two of them, and the workers would only take turns.
unsigned usable_cpus() {
    unsigned n = std::max(1u, std::thread::hardware_concurrency());
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) n = static_cast<unsigned>(CPU_COUNT(&set));
    std::ifstream self("/proc/self/cgroup");
    std::string line, dir;
    while (std::getline(self, line))
        if (line.rfind("0::", 0) == 0) dir = line.substr(3);  // cgroup v2: "0::/system.slice/vigil.service"
    // The quota may sit on the process's cgroup or on any parent, up to the root.
    for (;;) {
        std::ifstream max_file("/sys/fs/cgroup" + dir + "/cpu.max");
        std::string quota;
        long long period = 0, q = 0;
        if (max_file >> quota >> period && quota != "max" && period > 0 &&
            std::from_chars(quota.data(), quota.data() + quota.size(), q).ec == std::errc() && q > 0)
            n = std::min<unsigned>(n, static_cast<unsigned>(std::max<long long>(1, (q + period - 1) / period)));
        if (dir.empty() || dir == "/") break;
        const size_t slash = dir.rfind('/');
        dir.resize(slash == std::string::npos ? 0 : slash);
    }
    return n;
}

void open_acceptor(session::Worker& w, tcp::endpoint ep) {
    w.acceptor = std::make_unique<tcp::acceptor>(w.ioc);
    w.acceptor->open(ep.protocol());
    w.acceptor->set_option(tcp::acceptor::reuse_address(true));
    w.acceptor->set_option(reuse_port(true));
    error_code ec;
    w.acceptor->bind(ep, ec);
    if (ec) throw std::runtime_error("cannot listen on " + ep.address().to_string() + ":" +
                                     std::to_string(ep.port()) + ": " + ec.message());
    w.acceptor->listen(net::socket_base::max_listen_connections);
}

// SO_REUSEPORT lets any process of the same user share a port, and the kernel then splits the
// connections between them: a second gateway (perhaps with another configuration) started on
// an address one already serves would silently take part of its traffic. So before the
// workers bind with it, one plain bind (SO_REUSEADDR only, which TIME_WAIT leftovers do not
// stop) proves no one else listens there. Port 0 picks a free port and cannot collide.
void ensure_address_free(const tcp::endpoint& ep) {
    if (ep.port() == 0) return;
    net::io_context probe_ctx;
    tcp::acceptor probe(probe_ctx);
    error_code ec;
    probe.open(ep.protocol(), ec);
    if (!ec) probe.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) probe.bind(ep, ec);
    if (ec == net::error::address_in_use)
        throw std::runtime_error("cannot listen on " + ep.address().to_string() + ":" + std::to_string(ep.port()) +
                                 ": another process (another vigil?) already listens there; one gateway per "
                                 "address (stop the other, or choose another proxy.listen)");
}

void write_ready_file(const std::string& path, const tcp::endpoint& ep, unsigned short admin_port) {
    std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp);
        std::string addr = ep.address().is_v6() ? "[" + ep.address().to_string() + "]" : ep.address().to_string();
        out << "{\"listen\": \"" << addr << ":" << ep.port() << "\", \"admin_port\": " << admin_port
            << ", \"pid\": " << ::getpid() << "}\n";
    }
    std::rename(tmp.c_str(), path.c_str());
}

}  // namespace vigil::gateway

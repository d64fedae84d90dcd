// vigil-loadgen: HTTP load through an explicit proxy (or straight to the origin), for the
// benchmarks in tests/bench/ — never part of the test suite.
//
//   vigil_loadgen --url https://host:port/path [--proxy 127.0.0.1:3128] [--cafile root.pem]
//                 [--mode keepalive|newconn] [--connections 32] [--seconds 10] [--threads 2]
//                 [--distinct-hosts N] [--origin-addr ADDR] [--resume on|off] [--rate N]
//
// HTTPS goes through CONNECT, then TLS with SNI, verified against --cafile; plain HTTP uses the
// absolute form through the proxy. keepalive: each connection sends requests one after another
// for the whole run; newconn: a new connection (and CONNECT, and handshake) per request.
// --distinct-hosts N: each new connection goes to the next of hN.HOST ... (N names under the
// URL's host, which must resolve for the proxy: e.g. a hosts-file line "127.0.0.1 *.HOST"), so
// every connection makes the gateway mint for a name it may not have seen (soak, first contact).
// --resume on (default): each client loop resumes its last TLS session to the same name, as
// browsers do; off: a full handshake for every connection.
// --origin-addr ADDR: without --proxy, connect to ADDR (SNI, Host and verification still use
// the URL's host), for measuring the origin directly under a test name.
// --rate N: at most N requests/s in all (each connection paced at N/connections), for tests
// that need a steady, known load rather than the most the machine can do.
// Prints requests/s, MB/s, latency p50/p99/p99.9 (ms) and errors, then one JSON line.
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
    std::string url, proxy, cafile, mode = "keepalive";
    int connections = 32, seconds = 10, threads = 2;
    double rate = 0;  // --rate: requests/s in all; 0 = as fast as possible
    long distinct_hosts = 0;
    bool resume = true;       // --resume off: a full TLS handshake for every connection
    std::string origin_addr;  // without a proxy: connect here instead of resolving the URL's host
    std::string scheme, host, port, target;
};

std::atomic<uint64_t> g_resumed{0};  // TLS sessions resumed

struct Results {
    std::mutex mu;
    std::vector<double> latencies_ms;
    uint64_t requests = 0, bytes = 0, errors = 0;
    std::map<std::string, uint64_t> error_kinds;
    void add(const std::vector<double>& lat, uint64_t req, uint64_t b, uint64_t err, const std::map<std::string, uint64_t>& kinds) {
        std::lock_guard lock(mu);
        latencies_ms.insert(latencies_ms.end(), lat.begin(), lat.end());
        requests += req;
        bytes += b;
        errors += err;
        for (const auto& [k, n] : kinds) error_kinds[k] += n;
    }
};

[[noreturn]] void usage(const std::string& why) {
    std::cerr << "vigil_loadgen: " << why
              << "\nusage: vigil_loadgen --url URL [--proxy HOST:PORT] [--cafile FILE] [--mode keepalive|newconn]"
                 " [--connections N] [--seconds N] [--threads N]\n";
    std::exit(2);
}

void parse_url(Options& o) {
    auto sep = o.url.find("://");
    if (sep == std::string::npos) usage("--url needs a scheme");
    o.scheme = o.url.substr(0, sep);
    if (o.scheme != "http" && o.scheme != "https") usage("--url must be http or https");
    std::string rest = o.url.substr(sep + 3);
    auto slash = rest.find('/');
    std::string authority = rest.substr(0, slash);
    o.target = slash == std::string::npos ? "/" : rest.substr(slash);
    auto colon = authority.rfind(':');
    o.host = colon == std::string::npos ? authority : authority.substr(0, colon);
    o.port = colon == std::string::npos ? (o.scheme == "https" ? "443" : "80") : authority.substr(colon + 1);
}

// One client connection's loop: connect (through the proxy), then requests until the deadline.
class Client {
public:
    Client(net::io_context& io, net::ssl::context& tls, const Options& o, Clock::time_point deadline)
        : io_(io), tls_(tls), o_(o), deadline_(deadline) {}

    net::awaitable<void> run(Results& results) {
        while (Clock::now() < deadline_) {
            bool ok = o_.scheme == "https" ? co_await https_session() : co_await plain_session();
            if (!ok) {
                ++errors_;
                net::steady_timer t(io_, std::chrono::milliseconds(10));
                co_await t.async_wait(net::use_awaitable);
            }
        }
        results.add(latencies_, requests_, bytes_, errors_, kinds_);
    }

private:
    void fail(const std::string& kind) { ++kinds_[kind]; }

    net::awaitable<bool> connect(beast::tcp_stream& s) {
        const std::string& h = !o_.proxy.empty() ? proxy_host_ : !o_.origin_addr.empty() ? o_.origin_addr : o_.host;
        const std::string& p = o_.proxy.empty() ? o_.port : proxy_port_;
        tcp::resolver r(io_);
        auto [ec, eps] = co_await r.async_resolve(h, p, net::as_tuple(net::use_awaitable));
        if (ec) {
            fail("resolve");
            co_return false;
        }
        s.expires_after(std::chrono::seconds(10));
        auto [cec, ep] = co_await s.async_connect(eps, net::as_tuple(net::use_awaitable));
        if (cec) {
            fail("connect");
            co_return false;
        }
        s.socket().set_option(tcp::no_delay(true));
        co_return true;
    }

    template <class Stream>
    net::awaitable<bool> exchange(Stream& s, beast::flat_buffer& buf, const std::string& target, bool keep_alive) {
        if (o_.rate > 0) {
            const auto interval = std::chrono::duration_cast<Clock::duration>(
                std::chrono::duration<double>(o_.connections / o_.rate));
            const auto now = Clock::now();
            if (next_ == Clock::time_point{} || next_ < now - interval) next_ = now;  // no catching up after a stall
            if (next_ > now) {
                net::steady_timer pause(io_, next_);
                co_await pause.async_wait(net::as_tuple(net::use_awaitable));
            }
            next_ += interval;
        }
        http::request<http::empty_body> req{http::verb::get, target, 11};
        req.set(http::field::host, (host_.empty() ? o_.host : host_) + ":" + o_.port);
        req.set(http::field::user_agent, "vigil-loadgen");
        req.keep_alive(keep_alive);
        auto t0 = Clock::now();
        beast::get_lowest_layer(s).expires_after(std::chrono::seconds(30));
        auto [wec, wn] = co_await http::async_write(s, req, net::as_tuple(net::use_awaitable));
        if (wec) {
            fail("write");
            co_return false;
        }
        http::response_parser<http::string_body> parser;
        parser.body_limit(1ull << 32);
        auto [rec, rn] = co_await http::async_read(s, buf, parser, net::as_tuple(net::use_awaitable));
        if (rec) {
            fail("read");
            co_return false;
        }
        if (parser.get().result_int() != 200) {
            fail("status " + std::to_string(parser.get().result_int()));
            co_return false;
        }
        latencies_.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        ++requests_;
        bytes_ += parser.get().body().size();
        co_return true;
    }

    net::awaitable<bool> plain_session() {
        beast::tcp_stream s(io_);
        if (!co_await connect(s)) co_return false;
        beast::flat_buffer buf;
        const std::string target = o_.proxy.empty() ? o_.target : o_.url;
        const bool keep = o_.mode == "keepalive";
        do {
            if (!co_await exchange(s, buf, target, keep)) co_return false;
        } while (keep && Clock::now() < deadline_);
        co_return true;
    }

    // The name this connection asks for: the URL's host, or the next of the distinct names.
    std::string next_host() {
        static std::atomic<long> counter{0};
        if (o_.distinct_hosts <= 0) return o_.host;
        return "h" + std::to_string(counter.fetch_add(1) % o_.distinct_hosts) + "." + o_.host;
    }

    net::awaitable<bool> https_session() {
        host_ = next_host();
        beast::tcp_stream s(io_);
        if (!co_await connect(s)) co_return false;
        beast::flat_buffer buf;
        if (!o_.proxy.empty()) {
            http::request<http::empty_body> req{http::verb::connect, host_ + ":" + o_.port, 11};
            req.set(http::field::host, host_ + ":" + o_.port);
            auto [wec, wn] = co_await http::async_write(s, req, net::as_tuple(net::use_awaitable));
            if (wec) {
            fail("connect write");
            co_return false;
        }
            http::response_parser<http::empty_body> p;
            p.skip(true);  // a CONNECT answer has no body
            auto [rec, rn] = co_await http::async_read_header(s, buf, p, net::as_tuple(net::use_awaitable));
            if (rec || p.get().result_int() != 200) {
            fail("CONNECT refused");
            co_return false;
        }
        }
        beast::ssl_stream<beast::tcp_stream> tls(std::move(s), tls_);
        SSL_set_tlsext_host_name(tls.native_handle(), host_.c_str());
        SSL_set1_host(tls.native_handle(), host_.c_str());
        // Resume this client's last session to the same name, as a browser does.
        if (o_.resume && session_ && session_host_ == host_) SSL_set_session(tls.native_handle(), session_.get());
        if (buf.size()) {
            fail("bytes after CONNECT");
            co_return false;
        }
        auto [hec] = co_await tls.async_handshake(net::ssl::stream_base::client, net::as_tuple(net::use_awaitable));
        if (hec) {
            fail("handshake");
            co_return false;
        }
        const bool keep = o_.mode == "keepalive";
        do {
            if (!co_await exchange(tls, buf, o_.target, keep)) co_return false;
        } while (keep && Clock::now() < deadline_);
        if (SSL_session_reused(tls.native_handle())) ++g_resumed;
        if (o_.resume) {  // after a response, so TLS 1.3 tickets have arrived
            // A copy: freeing the connection without close_notify marks its own unresumable.
            if (SSL_SESSION* got = SSL_get0_session(tls.native_handle())) session_.reset(SSL_SESSION_dup(got));
            session_host_ = host_;
        }
        co_return true;
    }


public:
    std::string proxy_host_, proxy_port_;

private:
    net::io_context& io_;
    net::ssl::context& tls_;
    const Options& o_;
    Clock::time_point deadline_;
    Clock::time_point next_{};  // --rate: when this connection's next request is due
    std::string host_;
    std::unique_ptr<SSL_SESSION, decltype(&SSL_SESSION_free)> session_{nullptr, SSL_SESSION_free};
    std::string session_host_;
    std::vector<double> latencies_;
    uint64_t requests_ = 0, bytes_ = 0, errors_ = 0;
    std::map<std::string, uint64_t> kinds_;
};

double percentile(std::vector<double>& v, double p) {
    if (v.empty()) return 0;
    size_t k = std::min(v.size() - 1, static_cast<size_t>(p / 100.0 * static_cast<double>(v.size())));
    std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
    return v[k];
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (i + 1 >= argc) usage(a + " needs a value");
        std::string v = argv[++i];
        if (a == "--url") o.url = v;
        else if (a == "--proxy") o.proxy = v;
        else if (a == "--cafile") o.cafile = v;
        else if (a == "--mode") o.mode = v;
        else if (a == "--connections") o.connections = std::stoi(v);
        else if (a == "--seconds") o.seconds = std::stoi(v);
        else if (a == "--threads") o.threads = std::stoi(v);
        else if (a == "--distinct-hosts") o.distinct_hosts = std::stol(v);
        else if (a == "--origin-addr") o.origin_addr = v;
        else if (a == "--resume") o.resume = v != "off";
        else if (a == "--rate") o.rate = std::stod(v);
        else usage("unknown option " + a);
    }
    if (o.url.empty()) usage("--url is required");
    if (o.mode != "keepalive" && o.mode != "newconn") usage("--mode keepalive|newconn");
    parse_url(o);
    net::ssl::context tls(net::ssl::context::tls_client);
    tls.set_verify_mode(net::ssl::verify_peer);
    if (!o.cafile.empty()) tls.load_verify_file(o.cafile);
    else tls.set_default_verify_paths();
    // Sessions are resumed by hand (one per client loop, --resume on) or not at all.
    SSL_CTX_set_session_cache_mode(tls.native_handle(), SSL_SESS_CACHE_OFF);

    Results results;
    const auto deadline = Clock::now() + std::chrono::seconds(o.seconds);
    const auto t0 = Clock::now();
    std::vector<std::thread> threads;
    for (int t = 0; t < o.threads; ++t) {
        threads.emplace_back([&, t] {
            net::io_context io;
            std::vector<std::unique_ptr<Client>> clients;
            for (int c = t; c < o.connections; c += o.threads) {
                auto cl = std::make_unique<Client>(io, tls, o, deadline);
                if (!o.proxy.empty()) {
                    auto colon = o.proxy.rfind(':');
                    cl->proxy_host_ = o.proxy.substr(0, colon);
                    cl->proxy_port_ = o.proxy.substr(colon + 1);
                }
                net::co_spawn(io, cl->run(results), net::detached);
                clients.push_back(std::move(cl));
            }
            io.run();
        });
    }
    for (auto& th : threads) th.join();
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    auto& lat = results.latencies_ms;
    const double p50 = percentile(lat, 50), p99 = percentile(lat, 99), p999 = percentile(lat, 99.9);
    std::printf("%s %s x%d: %.0f req/s, %.1f MB/s, p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, %llu requests, %llu errors\n",
                o.mode.c_str(), o.url.c_str(), o.connections, static_cast<double>(results.requests) / secs,
                static_cast<double>(results.bytes) / secs / 1e6, p50, p99, p999,
                static_cast<unsigned long long>(results.requests), static_cast<unsigned long long>(results.errors));
    for (const auto& [k, n] : results.error_kinds) std::printf("  error %s: %llu\n", k.c_str(), static_cast<unsigned long long>(n));
    std::printf("  TLS sessions resumed: %llu\n", static_cast<unsigned long long>(g_resumed.load()));
    std::printf("{\"rps\": %.1f, \"mbps\": %.2f, \"p50_ms\": %.3f, \"p99_ms\": %.3f, \"p999_ms\": %.3f, \"requests\": %llu, "
                "\"errors\": %llu, \"resumed\": %llu}\n",
                static_cast<double>(results.requests) / secs, static_cast<double>(results.bytes) / secs / 1e6, p50, p99,
                p999, static_cast<unsigned long long>(results.requests), static_cast<unsigned long long>(results.errors),
                static_cast<unsigned long long>(g_resumed.load()));
    return results.errors ? 1 : 0;
}

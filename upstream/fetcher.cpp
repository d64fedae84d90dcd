// The gateway's own HTTP client for AIA and OCSP: one io_context on one thread.
#include "upstream/fetcher.hpp"

#include <pthread.h>

#include <optional>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "upstream/connector.hpp"
#include "wire/framing.hpp"

namespace vigil::upstream {

struct Fetcher::Impl {
    explicit Impl(Connector& c) : up(c) {}
    Connector& up;
    FetchLimits limits;
    net::io_context ioc{1};
    net::executor_work_guard<net::io_context::executor_type> work{ioc.get_executor()};
    std::thread thread;
};

namespace {

// http://host[:port][/path], parsed as the proxy parses absolute-form requests (the host
// normalised: lower case, a DNS name or an address); nullopt for anything else, and for a path
// with spaces or control bytes (it goes into a request line).
std::optional<AbsoluteUrl> parse_http_url(const std::string& url) {
    auto u = parse_absolute_url(url);
    if (!u || u->scheme != "http") return std::nullopt;
    for (char c : u->target)
        if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) return std::nullopt;
    return u;
}

FetchResult failed(std::string why) { return {false, {}, std::move(why)}; }

net::awaitable<FetchResult> run_fetch(Connector& up, FetchLimits limits, std::string url, std::string post_body,
                                      std::string type) {
    using namespace net::experimental::awaitable_operators;
    const auto target = parse_http_url(url);
    if (!target) co_return failed("not a plain http:// URL");
    const auto deadline = std::chrono::steady_clock::now() + limits.timeout;
    // The proxy's own connector: the hosts file, the destination rules (private addresses,
    // the gateway itself) and upstream.parents with their fail-over and direct_fallback, so
    // a network whose only way out is the parent proxy still completes chains and asks OCSP.
    const Authority& origin = target->authority;
    std::optional<beast::tcp_stream> connected;
    Route route;
    route.http = true;
    net::steady_timer timer(co_await net::this_coro::executor, deadline);
    auto outcome = co_await (connect_tcp(up, origin, connected, 0, &route) || timer.async_wait(use_nothrow));
    if (outcome.index() == 1) co_return failed("connecting to " + origin.host + " timed out");
    if (auto& refused = std::get<0>(outcome))
        co_return failed("connecting to " + origin.host + " failed (" + refused->detail + ")");
    beast::tcp_stream& stream = *connected;
    stream.expires_at(deadline);
    // A parent proxy is asked in absolute-form, as the relay asks it for plain HTTP.
    beast::http::request<beast::http::string_body> req(post_body.empty() ? beast::http::verb::get
                                                                          : beast::http::verb::post,
                                                       route.via_parent() ? "http://" + origin.host_port() + target->target
                                                                          : target->target,
                                                       11);
    const bool v6 = origin.host.find(':') != std::string::npos;  // bracketed in host_port()
    req.set(beast::http::field::host, origin.port == 80 && !v6 ? origin.host : origin.host_port());
    req.set(beast::http::field::user_agent, "vigil");
    req.set(beast::http::field::connection, "close");
    if (!post_body.empty()) {
        req.set(beast::http::field::content_type, type);
        req.body() = std::move(post_body);
        req.prepare_payload();
    }
    auto [wec, wn] = co_await beast::http::async_write(stream, req, use_nothrow);
    if (wec) co_return failed("sending the request failed (" + wec.message() + ")");
    beast::flat_buffer buf;
    beast::http::response_parser<beast::http::string_body> parser;
    parser.header_limit(16 * 1024);
    parser.body_limit(limits.max_body);
    auto [rdec, rn] = co_await beast::http::async_read(stream, buf, parser, use_nothrow);
    if (rdec == beast::http::error::body_limit)
        co_return failed("the response is larger than " + std::to_string(limits.max_body) + " bytes");
    if (rdec == beast::error::timeout) co_return failed("no complete response within the time limit");
    if (rdec) co_return failed("reading the response failed (" + rdec.message() + ")");
    auto res = parser.release();
    if (res.result_int() != 200) co_return failed("the server answered " + std::to_string(res.result_int()));
    co_return FetchResult{true, std::move(res.body()), {}};
}

}  // namespace

Fetcher::Fetcher(Connector& connector, FetchLimits limits) : impl_(std::make_unique<Impl>(connector)) {
    impl_->limits = limits;
    impl_->thread = std::thread([im = impl_.get()] {
        pthread_setname_np(pthread_self(), "vigil-fetch");
        im->ioc.run();
    });
}

Fetcher::~Fetcher() {
    impl_->work.reset();
    impl_->ioc.stop();
    impl_->thread.join();
}

net::awaitable<FetchResult> Fetcher::fetch(std::string url, std::string post_body, std::string content_type) {
    auto op = run_fetch(impl_->up, impl_->limits, std::move(url), std::move(post_body), std::move(content_type));
    auto [ep, result] = co_await net::co_spawn(impl_->ioc, std::move(op), use_nothrow);
    if (ep) co_return failed("the fetch failed unexpectedly");
    co_return result;
}

}  // namespace vigil::upstream

// HTTP/1.1 messages on the wire besides bodies: Vigil's own pages, origins' response heads,
// byte pumps for tunnels and upgrades, and the head of a response compressed for the client.
// Generic over the stream types.
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "wire/body.hpp"

namespace vigil::wire {

// GCC 12 destroys some temporaries inside a co_await expression twice (GCC PR 99576/100611): pass
// named objects to coroutines, never braced temporaries such as `write_page(s, cx, {...})`.

// Answers with one of Vigil's own pages; the connection is closed afterwards. Returns the bytes
// written (the session's audit record counts them).
template <class Stream>
net::awaitable<size_t> write_page(Stream& s, Context cx, const PageInfo& info, unsigned version = 11) {
    http::response<http::string_body> res{static_cast<http::status>(info.status), version == 10 ? 10u : 11u};
    res.set(http::field::server, "Vigil");
    res.set(http::field::content_type, "text/html; charset=utf-8");
    res.set(http::field::cache_control, "no-store");
    res.set("X-Vigil-Reason", info.code);
    if (!info.transaction.empty()) res.set("X-Vigil-Transaction", info.transaction);
    // One challenge per line (Negotiate, then Basic): one Proxy-Authenticate field each.
    for (size_t at = 0; at < info.proxy_authenticate.size();) {
        const size_t end = std::min(info.proxy_authenticate.find('\n', at), info.proxy_authenticate.size());
        res.insert(http::field::proxy_authenticate, std::string_view(info.proxy_authenticate).substr(at, end - at));
        at = end + 1;
    }
    const auto& p = cx.cfg.pages;
    const Branding brand{p.organisation, p.logo, p.help_url, p.request_access_url, page_template(cx.cfg, info.action)};
    res.body() = render_page(info, brand);
    res.keep_alive(false);
    res.prepare_payload();
    expire_after(s, cx.cfg.io);
    auto [ec, n] = co_await http::async_write(s, res, use_nothrow);
    count(cx.counters.bytes_out, n);
    log_info("answered " + std::to_string(info.status) + " " + info.code + ": " + info.reason +
                 (info.host.empty() ? "" : " (" + info.host + ")"),
             info.conn_id);
    co_return n;
}

enum class ResponseHead { ok, closed_early, timeout, bad };

// Reads an origin's final response head into `rp`, skipping interim 1xx responses other than
// 101. When it fails, `error` says why for the error page.
template <class Stream>
net::awaitable<ResponseHead> read_response_head(Stream& s, beast::flat_buffer& buf,
                                                std::optional<http::response_parser<http::buffer_body>>& rp,
                                                bool head_request, Context cx, std::string& error) {
    for (;;) {
        rp.emplace();
        rp->header_limit(static_cast<std::uint32_t>(cx.cfg.max_header_bytes));
        rp->body_limit(boost::none);
        if (head_request) rp->skip(true);
        expire_after(s, cx.cfg.io);
        auto [ec, n] = co_await http::async_read_header(s, buf, *rp, use_nothrow);
        if (ec == beast::error::timeout) {
            count(cx.counters.upstream_timeout);
            co_return ResponseHead::timeout;
        }
        if (ec) {
            bool early = n == 0 && (ec == http::error::end_of_stream || ec == net::error::eof ||
                                    ec == net::error::connection_reset || ec == net::ssl::error::stream_truncated);
            if (!early) count(cx.counters.upstream_bad_response);
            error = early ? "the origin server closed the connection without answering"
                          : "the origin server's response could not be read: " + ec.message();
            co_return early ? ResponseHead::closed_early : ResponseHead::bad;
        }
        int status = rp->get().result_int();
        if (status >= 100 && status < 200 && status != 101) continue;
        co_return ResponseHead::ok;
    }
}

// Copies bytes one way until EOF, error or idle timeout (upgraded connections, tunnels).
template <class From, class To>
net::awaitable<void> pump(From& from, To& to, Context cx, std::atomic<uint64_t>& counter, Throttle* throttle,
                          Throttle::Direction direction) {
    std::vector<char> buf(16 * 1024);
    const size_t chunk = throttle ? throttle->chunk(direction, buf.size()) : buf.size();
    for (;;) {
        expire_after(from, cx.cfg.tunnel_idle);
        auto [ec, n] = co_await from.async_read_some(net::buffer(buf.data(), chunk), use_nothrow);
        if (ec) co_return;
        count(counter, n);
        if (throttle) co_await pace(throttle, direction, n, cx);
        expire_after(to, cx.cfg.io);
        auto [ec2, m] = co_await net::async_write(to, net::buffer(buf.data(), n), use_nothrow);
        if (ec2) co_return;
    }
}

// A response sent compressed in full: the bytes saved show on /metrics.
inline void count_compressed(Counters& counters, const Compressor& c) {
    count(counters.compressed);
    count(counters.compress_in_bytes, c.bytes_in());
    count(counters.compress_out_bytes, c.bytes_out());
}

// The client gets another representation: its own encoding, chunked, a weak validator,
// and caches told that it varies with Accept-Encoding.
inline void compressed_head(http::response<http::buffer_body>& res, const Compressor& c) {
    res.erase(http::field::content_length);
    res.erase(http::field::accept_ranges);
    res.chunked(true);
    res.set(http::field::content_encoding, coding_name(c.coding()));
    if (auto etag = res[http::field::etag]; !etag.empty() && etag.rfind("W/", 0) != 0)
        res.set(http::field::etag, "W/" + std::string(etag));
    // Every Vary line counts (RFC 9110 5.3); they become one.
    const std::string vary = field_list(res.base(), http::field::vary);
    bool star = false;
    for (auto v = std::string_view(vary); !v.empty();) {
        const auto comma = v.find(',');
        star = star || trim(v.substr(0, comma)) == "*";
        v = comma == std::string_view::npos ? std::string_view() : v.substr(comma + 1);
    }
    if (vary.empty()) res.set(http::field::vary, "Accept-Encoding");
    else if (!star) res.set(http::field::vary, vary + ", Accept-Encoding");
}

}  // namespace vigil::wire

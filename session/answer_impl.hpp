// HttpRelay's definitions, the answers Vigil gives itself: applying a request verdict, the
// redirect of a Continue link (with its grant), refusal and block pages.
#pragma once

#include "session/exchange_impl.hpp"

namespace vigil::session {

// Applies the request verdict: false (x.refusal set) for a block or an unanswered warning.
template <class Client, class Upstream>
bool HttpRelay<Client, Upstream>::enforce(Exchange& x) {
    const inspect::Verdict& v = x.verdict;
    if (v.action == inspect::Action::block) {
        count(sv_.wire.counters.blocked);
        x.refusal = block_page(v, x.url, cid_);
        return false;
    }
    if (v.action == inspect::Action::warn) {
        count(sv_.wire.counters.warned);
        auto host = parse_absolute_url(x.url);
        std::string h = host ? host->authority.host : x.url;
        if (!sv_.policy.warned.allowed(client_ip_, h) && !has_grant(sv_.policy, x.in.base(), client_ip_, h)) {
            x.refusal = warn_page(sv_.policy, v, x.url, client_ip_, h, cid_);
            return false;
        }
        log_info("warned and continued: " + x.url + " (" + v.rule + ")", cid_);
    }
    return true;
}

// A Continue link: a valid one sends the browser back to the clean URL with a grant for the
// host (a cookie, so the choice holds on any gateway with the same key, after a restart too).
template <class Client, class Upstream>
net::awaitable<bool> HttpRelay<Client, Upstream>::continue_redirect(Exchange& x) {
    if (!*x.continue_link) {
        const Failure f{Fail::bad_continue_token, "the continue link is invalid or expired; reload the page", x.url};
        co_return co_await refuse(f, x.version);
    }
    log_info("user chose to continue to " + x.url, cid_);
    if (tx_) {
        tx_->rec().status = 302;
        tx_->rec().action = "warn";
        tx_->rec().reason = "user chose to continue";
    }
    http::response<http::string_body> res{http::status::found, x.version == 10 ? 10u : 11u};
    res.set(http::field::location, x.url);
    res.set(http::field::cache_control, "no-store");
    res.insert(http::field::set_cookie, grant_cookie(sv_.policy, client_ip_, x.origin.host, x.https()));
    if (tx_) res.set("X-Vigil-Transaction", tx_->rec().txid);
    res.keep_alive(false);
    res.prepare_payload();
    expire_after(client_, sv_.wire.cfg.io);
    if (tx_) tx_->first_byte();
    auto [ec, n] = co_await http::async_write(client_, res, use_nothrow);
    count(sv_.wire.counters.bytes_out, n);
    co_return false;
}

template <class Client, class Upstream>
net::awaitable<bool> HttpRelay<Client, Upstream>::refuse(const PageInfo& given, unsigned version) {
    PageInfo info = given;
    info.conn_id = cid_;
    co_await send_page(client_, sv_.wire, info, version, tx_);
    co_return false;
}

template <class Client, class Upstream>
net::awaitable<bool> HttpRelay<Client, Upstream>::block(const inspect::Verdict& v, const std::string& url,
                                                        unsigned version) {
    count(sv_.wire.counters.blocked);
    const PageInfo page = block_page(v, url, cid_);
    co_return co_await refuse(page, version);
}

}  // namespace vigil::session

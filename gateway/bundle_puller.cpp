// The pull: fetch, verify, compare versions, replace the rules in one transaction.
#include "gateway/bundle_puller.hpp"

#include <pthread.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/log.hpp"
#include "rules/bundle.hpp"
#include "rules/db.hpp"

namespace vigil::gateway {

using namespace vigil::io;
namespace {
namespace http = beast::http;
constexpr uint64_t kMaxBundle = 64ull << 20;
}  // namespace

std::string fetch_bundle(const std::string& source, std::chrono::seconds timeout) {
    if (source.rfind("http://", 0) != 0) {
        std::ifstream in(source, std::ios::binary);
        if (!in) throw std::runtime_error(source + ": " + std::strerror(errno));
        std::stringstream s;
        s << in.rdbuf();
        if (s.str().size() > kMaxBundle) throw std::runtime_error(source + ": larger than 64 MiB");
        return s.str();
    }
    auto url = io::parse_absolute_url(source);
    if (!url) throw std::runtime_error(source + ": not an http:// URL");
    net::io_context ioc;
    std::string body, error = "timed out after " + std::to_string(timeout.count()) + " s";
    auto get = [&]() -> net::awaitable<void> {
        tcp::resolver resolver(ioc);
        auto [rec, eps] = co_await resolver.async_resolve(url->authority.host, std::to_string(url->authority.port), use_nothrow);
        if (rec) {
            error = "cannot resolve " + url->authority.host + ": " + rec.message();
            co_return;
        }
        beast::tcp_stream stream(ioc);
        stream.expires_after(timeout);
        auto [cec, ep] = co_await stream.async_connect(eps, use_nothrow);
        if (cec) {
            error = "cannot connect to " + url->authority.host_port() + ": " + cec.message();
            co_return;
        }
        http::request<http::empty_body> req{http::verb::get, url->target, 11};
        req.set(http::field::host, url->authority.host_port());
        req.set(http::field::user_agent, "Vigil rules.source");
        auto [wec, wn] = co_await http::async_write(stream, req, use_nothrow);
        beast::flat_buffer buf;
        http::response_parser<http::string_body> parser;
        parser.body_limit(kMaxBundle);
        auto [hec, hn] = co_await http::async_read(stream, buf, parser, use_nothrow);
        if (wec || hec) {
            error = "fetching " + source + ": " + (wec ? wec : hec).message();
            co_return;
        }
        if (parser.get().result_int() != 200) {
            error = source + " answered " + std::to_string(parser.get().result_int());
            co_return;
        }
        body = std::move(parser.get().body());
        error.clear();
    };
    net::co_spawn(ioc, get(), net::detached);
    ioc.run_for(timeout + std::chrono::seconds(1));
    if (!error.empty()) throw std::runtime_error(error);
    return body;
}

BundlePuller::BundlePuller(const Config& cfg, admin::RulesHealth& health, std::function<void()> loaded)
    : cfg_(cfg), health_(health), loaded_(std::move(loaded)) {
    thread_ = std::thread([this] {
        pthread_setname_np(pthread_self(), "vigil-bundle");
        run();
    });
}

BundlePuller::~BundlePuller() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
}

void BundlePuller::poke() {
    {
        std::lock_guard lock(mu_);
        poked_ = true;
    }
    cv_.notify_all();
}

void BundlePuller::run() {
    for (;;) {
        pull();
        std::unique_lock lock(mu_);
        cv_.wait_for(lock, cfg_.rules_source_interval, [&] { return stop_ || poked_; });
        if (stop_) return;
        poked_ = false;
    }
}

void BundlePuller::pull() {
    std::string refused;
    try {
        const std::string bytes = fetch_bundle(cfg_.rules_source, std::max(cfg_.fetch, std::chrono::seconds(30)));
        rules::Bundle b = rules::open_bundle(bytes, cfg_.rules_source_key);
        auto db = rules::RuleDb::open(cfg_.rules_path, rules::RuleDb::Mode::create);
        const std::string have_text = db->meta("bundle_version");
        const int64_t have = have_text.empty() ? 0 : std::stoll(have_text);
        health_.bundle_version = have;
        if (b.version < have) {
            refused = "bundle version " + std::to_string(b.version) + " is older than version " + std::to_string(have) +
                      " already applied: not applied (a rollback is published as a new version)";
        } else if (b.version > have) {
            b.rules.meta["source"] = "bundle " + std::to_string(b.version) + " from " + cfg_.rules_source;
            b.rules.meta["bundle_version"] = std::to_string(b.version);
            b.rules.meta["bundle_published"] = b.published;
            db->replace_all(b.rules, "rules.source", "bundle version " + std::to_string(b.version) + " (published " +
                                                         b.published + ", key " + b.key_id + ")");
            health_.bundle_version = b.version;
            core::log_info("rules.source: applied bundle version " + std::to_string(b.version) + " published " +
                           b.published + " from " + cfg_.rules_source);
            db.reset();
            loaded_();
        }
    } catch (const std::exception& e) {
        refused = e.what();
    }
    const bool was_failing = health_.bundle_failing.exchange(!refused.empty());
    std::lock_guard lock(health_.mu);
    if (!refused.empty() && (!was_failing || health_.bundle_error != refused))
        core::log_error("rules.source " + cfg_.rules_source + ": " + refused + "; the rules in force stay");
    health_.bundle_error = refused;
}

}  // namespace vigil::gateway

// The admin listener: /healthz, /readyz, /metrics (Prometheus text) and the onboarding page, on
// its own address, never on the proxy port. Read-only views of the other services.
#pragma once

#include <atomic>
#include <mutex>
#include <string>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "audit/ship.hpp"
#include "audit/writer.hpp"
#include "cache/store.hpp"
#include "core/snapshot.hpp"
#include "inspect/ruleset.hpp"
#include "tls/material.hpp"
#include "wire/context.hpp"

namespace vigil::admin {

using namespace vigil::core;
using namespace vigil::io;
using config::Config;

// The rule reloader's last word: whether the newest attempt failed (the old ruleset serving),
// when a ruleset was last loaded, and why the failing one was refused.
struct RulesHealth {
    std::atomic<bool> failing{false};
    std::atomic<int64_t> last_success_ms{0};
    std::atomic<int64_t> bundle_version{0};  // rules.source: the bundle version in the rule database
    std::atomic<bool> bundle_failing{false};
    std::mutex mu;
    std::string error;         // under mu
    std::string bundle_error;  // under mu: why the newest pull was not applied
};

// What the admin pages read; built by the gateway's wiring and outliving the listener.
struct Sources {
    const Config& cfg;
    Counters& counters;
    LabelledCounters& labelled;
    const std::atomic<bool>& stopping;
    const std::atomic<int>& active_sessions;
    const Snapshot<const inspect::RuleSet>& rules;
    RulesHealth& rules_health;
    const Snapshot<tls::Material>& tls;
    cache::Store* cache = nullptr;
    audit::Writer* audit = nullptr;
    uint16_t proxy_port = 0;  // the proxy listener's port, for the PAC file
    const std::atomic<bool>* draining = nullptr;  // proxy.drain_delay after SIGTERM: not ready
    audit::Shipper* shipper = nullptr;             // audit.ship
    int64_t started_s = 0;    // Unix time the gateway started
};

// Prometheus text exposition of every counter and gauge.
std::string metrics_text(Sources& src);

// The answer to one admin request (/healthz, /readyz, /metrics, the onboarding downloads, the
// PAC file); no I/O. `operator_client`: the peer is in admin.allow; a client that is only in
// proxy.allow_clients gets the PAC file and the onboarding downloads, and 403 for the rest.
boost::beast::http::response<boost::beast::http::string_body> respond(
    Sources& src, const boost::beast::http::request<boost::beast::http::string_body>& req, bool operator_client = true);

net::awaitable<void> admin_accept_loop(Sources& src, tcp::acceptor& acceptor);

}  // namespace vigil::admin

// The admin pages as answers to requests, without a socket: health, readiness while draining
// and with a stale ruleset, metrics with every counter and gauge, onboarding downloads.
#include "admin/admin.hpp"

#include <gtest/gtest.h>

#include "tests/tls/test_ca.hpp"
#include "tls/cert_cache.hpp"
#include "tls/mint.hpp"

namespace vigil::admin {
namespace {

namespace http = boost::beast::http;

struct AdminTest : ::testing::Test {
    Config cfg;
    Counters counters;
    LabelledCounters labelled;
    std::atomic<bool> stopping{false};
    std::atomic<int> active{3};
    Snapshot<const inspect::RuleSet> rules;
    RulesHealth health;
    Snapshot<tls::Material> material;
    Sources src{cfg, counters, labelled, stopping, active, rules, health, material};

    void SetUp() override {
        rules.store(inspect::RuleSet::empty());
        auto m = std::make_shared<tls::Material>();
        m->ca = tls::testing::make_test_ca();
        m->minter = std::make_unique<tls::LeafMinter>(m->ca);
        auto* minter = m->minter.get();
        m->certs = std::make_unique<tls::CertCache>([minter](const std::string& h) { return minter->mint(h); },
                                                    tls::CertCache::Limits{});
        material.store(m);
    }
    http::response<http::string_body> get(const std::string& target) {
        http::request<http::string_body> req{http::verb::get, target, 11};
        return respond(src, req);
    }
};

TEST_F(AdminTest, HealthAndReadinessFollowTheGatewaysState) {
    EXPECT_EQ(get("/healthz").result_int(), 200);
    EXPECT_EQ(get("/readyz").body(), "ready\n");
    health.failing = true;
    health.error = "database disk image is malformed";
    auto stale = get("/readyz");
    EXPECT_EQ(stale.result_int(), 200);  // the previous ruleset still serves
    EXPECT_NE(stale.body().find("database disk image is malformed"), std::string::npos);
    stopping = true;
    auto draining = get("/readyz");
    EXPECT_EQ(draining.result_int(), 503);
    EXPECT_NE(draining.body().find("shutting down"), std::string::npos);
    http::request<http::string_body> post{http::verb::post, "/readyz", 11};
    EXPECT_EQ(respond(src, post).result_int(), 405);
}

TEST_F(AdminTest, MetricsCarryEveryCounterAndTheGauges) {
    count(counters.blocked, 7);
    labelled.add("decisions_total", {{"kind", "transaction"}, {"action", "block"}, {"category", "malware"}});
    auto m = get("/metrics");
    EXPECT_EQ(m.result_int(), 200);
    const std::string& text = m.body();
    // Every counter, in base units: throttled_ms is exported as seconds.
#define VIGIL_EXPECT_METRIC(name)                                                           \
    if (std::string_view(#name) != "throttled_ms") {                                        \
        EXPECT_NE(text.find("vigil_" #name "_total "), std::string::npos) << #name;          \
    }
    VIGIL_COUNTERS(VIGIL_EXPECT_METRIC)
#undef VIGIL_EXPECT_METRIC
    EXPECT_NE(text.find("vigil_throttled_seconds_total 0.000\n"), std::string::npos);
    EXPECT_EQ(text.find("throttled_ms"), std::string::npos);
    // Histograms, and the CA's expiry per certificate.
    EXPECT_NE(text.find("# TYPE vigil_time_to_first_byte_seconds histogram\n"), std::string::npos);
    EXPECT_NE(text.find("vigil_mint_seconds_bucket{le=\"+Inf\"} 0\n"), std::string::npos);
    EXPECT_NE(text.find("vigil_ca_expiry_seconds{ca=\"root\"} "), std::string::npos);
    EXPECT_NE(text.find("vigil_blocked_total 7\n"), std::string::npos);
    EXPECT_NE(text.find("vigil_active_connections 3\n"), std::string::npos);
    EXPECT_NE(text.find("vigil_ruleset_reload_failed 0\n"), std::string::npos);
    EXPECT_NE(text.find("vigil_decisions_total{kind=\"transaction\",action=\"block\",category=\"malware\"} 1"),
              std::string::npos);
}

TEST_F(AdminTest, OnboardingServesTheRootAndNothingElse) {
    auto pem = get("/vigil-root.pem");
    EXPECT_EQ(pem.result_int(), 200);
    EXPECT_NE(pem.body().find("-----BEGIN CERTIFICATE-----"), std::string::npos);
    EXPECT_EQ(pem.body().find("PRIVATE KEY"), std::string::npos);
    EXPECT_EQ(get("/issuing.key").result_int(), 404);
}

}  // namespace
}  // namespace vigil::admin

// The relay's phases on Beast's test stream, with a fake origin connector: request rules,
// response rules, held bodies, refusals, keep-alive reuse and the one retry of a stale origin
// connection, and an origin connection never reused after a failed body. No sockets.
#include "session/cached_impl.hpp"

#include <deque>

#include <gtest/gtest.h>

#include "tests/support/run_awaitable.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/_experimental/test/stream.hpp>

namespace vigil::session {

namespace test = boost::beast::test;
template class HttpRelay<test::stream, test::stream>;

namespace {

using namespace std::chrono_literals;
using Relay = HttpRelay<test::stream, test::stream>;

using test_support::run;

rules::Signature signature(const std::string& target, const std::string& pattern) {
    return {"sig-" + target, target, pattern, "block", "high", "", "", true};
}

// The gateway's side of one client connection and the origins it reaches: every origin
// connection the relay opens is answered with the next scripted response.
struct RelayTest : ::testing::Test {
    net::io_context ioc;
    Config cfg;
    Counters counters;
    LabelledCounters labelled;
    std::atomic<bool> stopping{false};
    Policy policy;
    AuditSink audit{nullptr, labelled, counters, stopping};
    test::stream client{ioc};
    test::stream client_peer{ioc};  // the browser: what the gateway writes to `client` arrives here
    beast::flat_buffer client_buf;
    std::deque<std::string> responses;  // one per origin connection, in order
    std::deque<test::stream> origin_peers;  // what each origin connection received
    int connects = 0;
    std::unique_ptr<Relay> relay;

    void SetUp() override {
        client.connect(client_peer);
        use_rules({});
        relay = std::make_unique<Relay>(
            RelayServices{Context{cfg, counters}, policy, audit, CacheService{}, stopping}, client, client_buf, 42,
            "10.0.0.5",
            [this](const Authority&, std::optional<test::stream>& up, Route&) -> net::awaitable<std::optional<Failure>> {
                ++connects;
                up.emplace(ioc);
                up->connect(origin_peers.emplace_back(ioc));
                if (!responses.empty()) {
                    up->append(responses.front());
                    responses.pop_front();
                }
                co_return std::nullopt;
            });
    }

    void use_rules(rules::RuleData d) { policy.rules.store(inspect::RuleSet::compile(d, {})); }

    // Sends `request` from the browser and relays it as one transaction.
    bool transaction(const std::string& request, const std::string& target = "/a") {
        client.append(request);
        auto head = run(ioc, read_request_head(client, client_buf, Context{cfg, counters}, HeadDeadline::fresh(10s)));
        EXPECT_EQ(head.status, HeadRead::ok);
        if (head.status != HeadRead::ok) return false;
        const Authority origin{"origin.test", 80};
        return run(ioc, relay->transaction(*head.parser, origin, target, false));
    }
    std::string browser_got() {
        std::string s(client_peer.str());
        client_peer.clear();
        return s;
    }
    bool origin_kept() {
        std::string key;
        std::shared_ptr<upstream::ParentLease> lease;
        return relay->origin().release_idle(key, lease).has_value();
    }
};

const std::string kGet = "GET http://origin.test/a HTTP/1.1\r\nHost: origin.test\r\nConnection: x-hop\r\nX-Hop: 1\r\n\r\n";
const std::string kOk = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello";

TEST_F(RelayTest, RequestAndResponseGoThroughWithHopByHopFieldsRemoved) {
    responses = {kOk};
    EXPECT_TRUE(transaction(kGet));
    const std::string sent(origin_peers.at(0).str());
    EXPECT_EQ(sent.rfind("GET /a HTTP/1.1\r\n", 0), 0u) << sent;  // origin-form
    EXPECT_NE(sent.find("Host: origin.test\r\n"), std::string::npos);
    EXPECT_EQ(sent.find("X-Hop"), std::string::npos);  // named by Connection: hop-by-hop
    const std::string got = browser_got();
    EXPECT_EQ(got.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << got;
    EXPECT_EQ(got.substr(got.size() - 5), "hello");
    EXPECT_TRUE(origin_kept());
}

TEST_F(RelayTest, KeptAliveOriginConnectionCarriesTheNextRequest) {
    responses = {kOk};
    EXPECT_TRUE(transaction(kGet));
    net::write(origin_peers.at(0), net::buffer(std::string("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nbye")));
    EXPECT_TRUE(transaction(kGet));
    EXPECT_EQ(connects, 1);
    EXPECT_NE(browser_got().find("bye"), std::string::npos);
}

TEST_F(RelayTest, StaleOriginConnectionIsRetriedOnceForARequestWithoutBody) {
    responses = {kOk, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh"};
    EXPECT_TRUE(transaction(kGet));
    origin_peers.at(0).close();  // the origin closed the idle connection meanwhile
    EXPECT_TRUE(transaction(kGet));
    EXPECT_EQ(connects, 2);
    EXPECT_NE(browser_got().find("fresh"), std::string::npos);
}

TEST_F(RelayTest, RequestWithBodyIsNotRetriedOnAStaleConnection) {
    responses = {kOk, kOk};
    EXPECT_TRUE(transaction(kGet));
    origin_peers.at(0).close();
    browser_got();
    EXPECT_FALSE(transaction("POST http://origin.test/a HTTP/1.1\r\nHost: origin.test\r\nContent-Length: 3\r\n\r\nabc"));
    EXPECT_EQ(connects, 1);
    const std::string got = browser_got();
    EXPECT_NE(got.find("HTTP/1.1 502"), std::string::npos) << got;
}

TEST_F(RelayTest, RequestRuleBlocksBeforeAnyOriginIsContacted) {
    rules::RuleData d;
    d.hosts = {{"origin.test", "gambling"}};
    rules::Policy p;
    p.name = "no-gambling";
    p.priority = 10;
    p.match_category = "gambling";
    p.action = "block";
    d.policies = {p};
    use_rules(d);
    EXPECT_FALSE(transaction(kGet));
    EXPECT_EQ(connects, 0);
    const std::string got = browser_got();
    EXPECT_EQ(got.rfind("HTTP/1.1 403", 0), 0u) << got;
    EXPECT_NE(got.find("X-Vigil-Reason: blocked"), std::string::npos);
    EXPECT_EQ(counters.blocked.load(), 1u);
}

TEST_F(RelayTest, UploadMatchingASignatureReachesNoOrigin) {
    rules::RuleData d;
    d.signatures = {signature("request_body", "SECRET-[0-9]{4}")};
    use_rules(d);
    EXPECT_FALSE(transaction("POST http://origin.test/a HTTP/1.1\r\nHost: origin.test\r\nContent-Length: 20\r\n\r\n"
                             "data SECRET-1234 end"));
    ASSERT_EQ(origin_peers.size(), 1u);
    EXPECT_EQ(origin_peers[0].str(), "");  // connected, but not even the head was sent
    EXPECT_EQ(browser_got().rfind("HTTP/1.1 403", 0), 0u);
    EXPECT_FALSE(origin_kept());
}

TEST_F(RelayTest, ResponseBodyMatchGivesABlockPageAndDropsTheOriginConnection) {
    rules::RuleData d;
    d.signatures = {signature("response_body", "X5O!P%@AP")};
    use_rules(d);
    responses = {"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\nbefore X5O!P%@AP end"};
    EXPECT_FALSE(transaction(kGet));
    const std::string got = browser_got();
    EXPECT_EQ(got.rfind("HTTP/1.1 403", 0), 0u) << got;  // the held head never went out
    EXPECT_EQ(got.find("before"), std::string::npos);
    EXPECT_FALSE(origin_kept());
}

TEST_F(RelayTest, ShortResponseBodyIsAPageWhenNothingWasSentAndTheConnectionIsNotReused) {
    responses = {"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this"};
    // The origin closes after the short body: the relay reads EOF before the length.
    client.append("");
    bool keep = true;
    {
        client.append(kGet);
        auto head = run(ioc, read_request_head(client, client_buf, Context{cfg, counters}, HeadDeadline::fresh(10s)));
        ASSERT_EQ(head.status, HeadRead::ok);
        // Open the origin connection first so its peer can be closed before the body is read.
        ASSERT_FALSE(run(ioc, relay->origin().connect(Authority{"origin.test", 80})).has_value());
        origin_peers.back().close();
        keep = run(ioc, relay->transaction(*head.parser, Authority{"origin.test", 80}, "/a", false));
    }
    EXPECT_FALSE(keep);
    const std::string got = browser_got();
    EXPECT_EQ(got.rfind("HTTP/1.1 502", 0), 0u) << got;  // held (scanned), so a page could still be sent
    EXPECT_NE(got.find("X-Vigil-Reason: origin_short_body"), std::string::npos);
    EXPECT_FALSE(origin_kept());
    EXPECT_EQ(counters.aborted_transfers.load(), 1u);
}

TEST_F(RelayTest, UnsupportedExpectationIsRefused) {
    EXPECT_FALSE(transaction("GET http://origin.test/a HTTP/1.1\r\nHost: origin.test\r\nExpect: magic\r\n\r\n"));
    EXPECT_EQ(browser_got().rfind("HTTP/1.1 417", 0), 0u);
    EXPECT_EQ(connects, 0);
}

TEST_F(RelayTest, BytesPastTheResponseMakeTheConnectionUnusable) {
    responses = {kOk + "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nodd"};  // an answer nobody asked for
    EXPECT_TRUE(transaction(kGet));
    EXPECT_FALSE(origin_kept());
}

TEST_F(RelayTest, ConnectionBoundAuthenticationKeepsTheOriginConnectionPersonal) {
    responses = {"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Negotiate\r\nContent-Length: 0\r\n\r\n"};
    EXPECT_TRUE(transaction(kGet));
    EXPECT_TRUE(relay->origin().personal());
    EXPECT_FALSE(origin_kept());  // never handed to another client
}

}  // namespace
}  // namespace vigil::session

// RuleSet: host matching (label-anchored, most specific wins), URL patterns, policy order,
// signature precedence and validators, streaming body scans, and matcher errors as verdicts.
#include "inspect/ruleset.hpp"
#include "inspect/set_match.hpp"

#include <gtest/gtest.h>
#include <zlib.h>

namespace vigil::inspect {
namespace {

using rules::RuleData;

rules::Signature sig(std::string name, std::string target, std::string pattern, std::string action = "block",
                     std::string validator = "") {
    return {std::move(name), std::move(target), std::move(pattern), std::move(action), "high", std::move(validator),
            "", true};
}

rules::Policy policy(std::string name, int prio, std::string category, std::string action) {
    rules::Policy p;
    p.name = std::move(name);
    p.priority = prio;
    p.match_category = std::move(category);
    p.action = std::move(action);
    return p;
}

Subject subject(std::string host, std::string url) { return {std::move(host), std::move(url), "", {}, "10.0.0.5"}; }

TEST(RuleSet, HostMatchingIsLabelAnchoredAndMostSpecificWins) {
    RuleData d;
    d.hosts = {{".example.com", "general"}, {"*.ads.example.com", "ads"}, {"safe.ads.example.com", "allowed"},
               {"exact.test", "exact"}, {"192.0.2.9", "iplit"}};
    auto rs = RuleSet::compile(d, {});
    EXPECT_EQ(rs->host_category("example.com"), "general");
    EXPECT_EQ(rs->host_category("WWW.Example.COM."), "general");
    EXPECT_EQ(rs->host_category("x.ads.example.com"), "ads");
    EXPECT_EQ(rs->host_category("ads.example.com"), "general");  // "*." is strictly below
    EXPECT_EQ(rs->host_category("safe.ads.example.com"), "allowed");
    EXPECT_EQ(rs->host_category("notexample.com"), "");
    EXPECT_EQ(rs->host_category("example.com.evil.net"), "");
    EXPECT_EQ(rs->host_category("exact.test"), "exact");
    EXPECT_EQ(rs->host_category("sub.exact.test"), "");
    EXPECT_EQ(rs->host_category("192.0.2.9"), "iplit");
}

TEST(RuleSet, ExplicitHostAllowBeatsCategoryBlock) {
    RuleData d;
    d.hosts = {{".gambling.example", "gambling"}, {"intranet.gambling.example", "corporate"}};
    d.policies = {policy("block-gambling", 10, "gambling", "block"), policy("allow-corp", 5, "corporate", "allow")};
    auto rs = RuleSet::compile(d, {});
    EXPECT_EQ(rs->check_connect(subject("www.gambling.example", "")).action, Action::block);
    auto v = rs->check_connect(subject("intranet.gambling.example", ""));
    EXPECT_EQ(v.action, Action::allow);
    EXPECT_EQ(v.rule, "allow-corp");
}

TEST(RuleSet, PolicyOrderUserGroupAndClient) {
    RuleData d;
    d.hosts = {{".social.example", "social"}};
    rules::Policy alice = policy("alice-ok", 1, "social", "allow");
    alice.match_user = "alice";
    rules::Policy finance = policy("finance-warn", 2, "social", "warn");
    finance.match_group = "finance";
    rules::Policy lab = policy("lab-monitor", 3, "social", "monitor");
    lab.match_client_cidr = "10.9.0.0/16";
    d.policies = {policy("block-social", 10, "social", "block"), alice, finance, lab};
    auto rs = RuleSet::compile(d, {});
    Subject s = subject("a.social.example", "https://a.social.example/");
    EXPECT_EQ(rs->check_connect(s).rule, "block-social");
    s.user = "alice";
    EXPECT_EQ(rs->check_connect(s).rule, "alice-ok");
    s.user = "bob";
    s.groups = {"staff", "finance"};
    EXPECT_EQ(rs->check_connect(s).action, Action::warn);
    s.groups = {};
    s.client_ip = "10.9.3.4";
    EXPECT_EQ(rs->check_connect(s).action, Action::monitor);
}

TEST(RuleSet, BypassPolicy) {
    RuleData d;
    d.hosts = {{".bank.example", "finance"}};
    d.policies = {policy("bypass-finance", 1, "finance", "bypass_inspection")};
    auto rs = RuleSet::compile(d, {});
    auto v = rs->check_connect(subject("www.bank.example", ""));
    EXPECT_TRUE(v.bypass);
    EXPECT_EQ(v.category, "finance");
}

TEST(RuleSet, UrlPatternsAreAnchoredToTheWholeUrl) {
    RuleData d;
    d.url_patterns = {{"https://docs\\.example/private/.*", "secret", "", true}};
    d.policies = {policy("block-secret", 1, "secret", "block")};
    auto rs = RuleSet::compile(d, {});
    EXPECT_EQ(rs->check_request(subject("docs.example", "https://docs.example/private/x"), {}).action, Action::block);
    EXPECT_EQ(rs->check_request(subject("evil.example", "https://evil.example/?u=https://docs.example/private/x"), {})
                  .action,
              Action::allow);
}

TEST(RuleSet, SignaturePrecedenceBlockOverWarnOverMonitor) {
    RuleData d;
    d.signatures = {sig("m", "url", "alpha", "monitor"), sig("w", "url", "beta", "warn"), sig("b", "url", "gamma")};
    auto rs = RuleSet::compile(d, {});
    auto v = rs->check_request(subject("h", "http://h/alpha-beta"), {});
    EXPECT_EQ(v.action, Action::warn);
    EXPECT_EQ(v.rule, "w");
    EXPECT_EQ(v.monitored, std::vector<std::string>{"m"});
    v = rs->check_request(subject("h", "http://h/alpha-beta-gamma"), {});
    EXPECT_EQ(v.action, Action::block);
    EXPECT_EQ(v.rule, "b");
    v = rs->check_request(subject("h", "http://h/alpha"), {});
    EXPECT_EQ(v.action, Action::monitor);
}

TEST(RuleSet, HeaderSignatures) {
    RuleData d;
    d.signatures = {sig("jndi", "request_header", "(?i)\\$\\{jndi:ldap://"), sig("srv", "response_header", "X-Bad: 1")};
    auto rs = RuleSet::compile(d, {});
    EXPECT_EQ(rs->check_request(subject("h", "http://h/"), {{"User-Agent", "${JNDI:ldap://x/a}"}}).rule, "jndi");
    EXPECT_EQ(rs->check_request(subject("h", "http://h/"), {{"User-Agent", "curl"}}).action, Action::allow);
    EXPECT_EQ(rs->check_response_headers(subject("h", ""), {{"X-Bad", "1"}}).rule, "srv");
}

TEST(RuleSet, LuhnValidatorFiltersRandomNumbers) {
    RuleData d;
    d.signatures = {sig("card", "request_body", "\\b(?:\\d[ -]?){12,18}\\d\\b", "block", "luhn")};
    auto rs = RuleSet::compile(d, {});
    auto scan = [&](const std::string& body) {
        auto s = rs->scan_body(Target::request_body, "");
        return s->feed(body).action;
    };
    EXPECT_EQ(scan("pay 4111 1111 1111 1111 now"), Action::block);
    EXPECT_EQ(scan("pay 4111-1111-1111-1111 now"), Action::block);
    EXPECT_EQ(scan("order 4111 1111 1111 1112"), Action::allow);
    EXPECT_EQ(scan("id 1234567812345678"), Action::allow);
    EXPECT_EQ(scan("first 1234567812345678 then 5555555555554444"), Action::block);
}

TEST(RuleSet, StreamingScanFindsMatchesSplitAcrossChunks) {
    RuleData d;
    d.signatures = {sig("needle", "response_body", "NEEDLE-[0-9]{4}-END")};
    auto rs = RuleSet::compile(d, {});
    std::string body = std::string(100000, 'a') + "NEEDLE-1234-END" + std::string(1000, 'b');
    for (size_t split : {size_t(100001), size_t(100007), size_t(100014)}) {
        auto s = rs->scan_body(Target::response_body, "");
        s->feed(std::string_view(body).substr(0, split));
        EXPECT_EQ(s->verdict().action, Action::allow);
        s->feed(std::string_view(body).substr(split));
        EXPECT_EQ(s->verdict().action, Action::block) << split;
        EXPECT_EQ(s->scan_result(), "matched");
    }
    // Byte by byte, too.
    auto s = rs->scan_body(Target::response_body, "");
    for (char c : std::string("xxNEEDLE-9876-ENDxx")) s->feed(std::string_view(&c, 1));
    EXPECT_EQ(s->verdict().action, Action::block);
}

std::string gzip(const std::string& in) {
    z_stream zs{};
    deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    std::string out(compressBound(in.size()) + 64, '\0');
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    zs.avail_in = static_cast<uInt>(in.size());
    zs.next_out = reinterpret_cast<Bytef*>(out.data());
    zs.avail_out = static_cast<uInt>(out.size());
    deflate(&zs, Z_FINISH);
    out.resize(zs.total_out);
    deflateEnd(&zs);
    return out;
}

TEST(RuleSet, GzipBodiesAreDecodedForScanning) {
    RuleData d;
    d.signatures = {sig("needle", "response_body", "NEEDLE")};
    auto rs = RuleSet::compile(d, {});
    std::string z = gzip(std::string(50000, 'q') + "NEEDLE");
    auto s = rs->scan_body(Target::response_body, "gzip");
    for (size_t i = 0; i < z.size(); i += 7) s->feed(std::string_view(z).substr(i, 7));
    EXPECT_EQ(s->verdict().action, Action::block);
}

TEST(RuleSet, DecompressionBombIsUnscannedAndFollowsOversizePolicy) {
    RuleData d;
    d.signatures = {sig("needle", "response_body", "NEEDLE")};
    InspectOptions opts;
    opts.decode.max_ratio = 50;
    opts.oversize_block = true;
    auto rs = RuleSet::compile(d, opts);
    std::string z = gzip(std::string(20u << 20, 'a'));  // ~20 KiB that inflates 1000-fold
    auto s = rs->scan_body(Target::response_body, "gzip");
    s->feed(z);
    EXPECT_EQ(s->scan_result(), "unscanned-oversize");
    EXPECT_EQ(s->verdict().action, Action::block);
    EXPECT_EQ(s->verdict().rule, "oversize");
}

TEST(RuleSet, ScanLimitAndUnknownEncoding) {
    RuleData d;
    d.signatures = {sig("needle", "response_body", "NEEDLE")};
    InspectOptions opts;
    opts.scan_limit = 1000;
    auto rs = RuleSet::compile(d, opts);
    auto s = rs->scan_body(Target::response_body, "");
    s->feed(std::string(2000, 'a') + "NEEDLE");
    EXPECT_EQ(s->scan_result(), "unscanned-oversize");
    EXPECT_EQ(s->verdict().action, Action::allow);  // oversize = allow by default, but recorded
    auto u = rs->scan_body(Target::response_body, "compress");
    EXPECT_EQ(u->scan_result(), "unscanned-encoding");
}

TEST(SetMatch, FailureIsNeverANoMatch) {
    // RE2::Set::Match returns false for "no match" and for failures alike. RE2 2022-06's DFA
    // rarely runs out of memory on demand, so the failure is produced here the other way RE2
    // reports one through ErrorInfo: matching before Compile().
    RE2::Options o;
    o.set_log_errors(false);
    RE2::Set uncompiled(o, RE2::UNANCHORED);
    uncompiled.Add("needle", nullptr);
    std::vector<int> hits;
    EXPECT_EQ(match_set(uncompiled, "a needle here", &hits), SetMatch::error);
    RE2::Set compiled(o, RE2::UNANCHORED);
    compiled.Add("needle", nullptr);
    ASSERT_TRUE(compiled.Compile());
    EXPECT_EQ(match_set(compiled, "a needle here", &hits), SetMatch::matched);
    EXPECT_EQ(match_set(compiled, "nothing", &hits), SetMatch::none);
    Verdict v;
    v.merge(matcher_error_verdict(true));
    EXPECT_TRUE(v.error);
    EXPECT_EQ(v.action, Action::block);
    EXPECT_EQ(matcher_error_verdict(false).action, Action::monitor);  // inspect.on_error = allow
}

TEST(RuleSet, BadPatternIsAClearError) {
    RuleData d;
    d.signatures = {sig("broken", "url", "(unclosed")};
    try {
        RuleSet::compile(d, {});
        FAIL();
    } catch (const rules::RulesError& e) {
        EXPECT_NE(std::string(e.what()).find("signature \"broken\""), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace vigil::inspect

namespace vigil::inspect {
namespace {

// Signatures with literal atoms (found by the prefilter, then run one by one) and without
// (`noatom`, run in one RE2::Set) decide together, in chunks, across a chunk boundary.
TEST(RuleSet, PrefilteredAndUnfilteredSignaturesDecideTogether) {
    RuleData d;
    d.signatures = {sig("m", "response_body", "alpha[0-9]+", "monitor"), sig("w", "response_body", "(?i)BetaWord", "warn"),
                    sig("b", "response_body", "gamma.{0,5}delta"),
                    sig("card", "response_body", "\\b(?:\\d[ -]?){12,18}\\d\\b", "block", "luhn"),
                    sig("noatom", "response_body", "[xyz]{3}\\d{2}q")};
    auto rs = RuleSet::compile(d, {});
    struct Case { std::string text, rule; Action action; std::vector<std::string> monitored; };
    for (const Case& c : std::vector<Case>{
             {"nothing here", "", Action::allow, {}},
             {"alpha42", "m", Action::monitor, {"m"}},
             {"x BETAWORD y", "w", Action::warn, {}},
             {"gamma--delta", "b", Action::block, {}},
             {"alpha1 gammaXdelta", "b", Action::block, {"m"}},
             {"4111 1111 1111 1111", "card", Action::block, {}},
             {"4111 1111 1111 1112", "", Action::allow, {}},
             {"zyx42q", "noatom", Action::block, {}},
             {"zyx4q alph4", "", Action::allow, {}},
             {std::string(70000, 'p') + "betaword", "w", Action::warn, {}}}) {
        auto scanner = rs->scan_body(Target::response_body, "");
        for (size_t off = 0; off < c.text.size(); off += 1000) scanner->feed(std::string_view(c.text).substr(off, 1000));
        EXPECT_EQ(scanner->verdict().action, c.action) << c.text.substr(0, 40);
        EXPECT_EQ(scanner->verdict().rule, c.rule) << c.text.substr(0, 40);
        EXPECT_EQ(scanner->verdict().monitored, c.monitored) << c.text.substr(0, 40);
    }
}

}  // namespace
}  // namespace vigil::inspect

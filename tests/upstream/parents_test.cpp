// Parent selection and direct hosts (connecting through parents: test_traffic.py).
#include "upstream/parents.hpp"

#include <gtest/gtest.h>

#include <memory>

#include "config/config.hpp"

namespace vigil::upstream {
namespace {

Config three(const std::string& selection) {
    Config cfg;
    cfg.parents = {{"a", "10.0.0.1", 3128}, {"b", "10.0.0.2", 3128}, {"c", "10.0.0.3", 3128}};
    cfg.parent_selection = selection;
    cfg.direct_hosts = {"intranet.example", ".corp.example"};
    return cfg;
}

std::string names(const std::vector<ParentProxy*>& v) {
    std::string out;
    for (auto* p : v) out += p->name;
    return out;
}

TEST(Parents, RoundRobinStartsEachConnectionAtTheNextParent) {
    Parents ps;
    ps.configure(three("round-robin"));
    EXPECT_EQ(names(ps.candidates("x.example")), "abc");
    EXPECT_EQ(names(ps.candidates("x.example")), "bca");
    EXPECT_EQ(names(ps.candidates("y.example")), "cab");
    EXPECT_EQ(names(ps.candidates("y.example")), "abc");
}

TEST(Parents, DownParentsAreSkippedUntilAllAreDown) {
    Parents ps;
    ps.configure(three("round-robin"));
    EXPECT_TRUE(Parents::set_up(*ps.all()[1], false));
    EXPECT_FALSE(Parents::set_up(*ps.all()[1], false));  // no change
    for (int i = 0; i < 6; ++i) EXPECT_EQ(names(ps.candidates("x.example")).find('b'), std::string::npos);
    Parents::set_up(*ps.all()[0], false);
    Parents::set_up(*ps.all()[2], false);
    EXPECT_EQ(names(ps.candidates("x.example")).size(), 3u);  // all down: try them all anyway
}

TEST(Parents, HostHashKeepsAHostOnOneParentWhileItIsUp) {
    Parents ps;
    ps.configure(three("host-hash"));
    const std::string first = names(ps.candidates("www.example"));
    for (int i = 0; i < 5; ++i) EXPECT_EQ(names(ps.candidates("www.example")), first);
    ParentProxy* chosen = nullptr;
    for (const auto& p : ps.all())
        if (p->name == first.substr(0, 1)) chosen = p.get();
    Parents::set_up(*chosen, false);
    EXPECT_EQ(names(ps.candidates("www.example")), first.substr(1));  // the next ones, same order
}

TEST(Parents, LeastConnectionsPrefersTheParentWithFewestOpen) {
    Parents ps;
    ps.configure(three("least-connections"));
    auto a = std::make_shared<ParentLease>(*ps.all()[0]);
    auto a2 = std::make_shared<ParentLease>(*ps.all()[0]);
    auto c = std::make_shared<ParentLease>(*ps.all()[2]);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(names(ps.candidates("x")), "bca");
    a.reset();
    a2.reset();  // a's connections closed: a and b tie at none, taken in turn
    EXPECT_EQ(ps.all()[0]->open.load(), 0);
    const std::string first = names(ps.candidates("x"));
    EXPECT_EQ(first.back(), 'c');
}

TEST(Parents, DirectHostsAreAnchored) {
    Parents ps;
    ps.configure(three("round-robin"));
    EXPECT_TRUE(ps.goes_direct("intranet.example"));
    EXPECT_FALSE(ps.goes_direct("www.intranet.example"));
    EXPECT_FALSE(ps.goes_direct("evilintranet.example"));
    EXPECT_TRUE(ps.goes_direct("corp.example"));
    EXPECT_TRUE(ps.goes_direct("a.b.corp.example"));
    EXPECT_FALSE(ps.goes_direct("evilcorp.example"));
    EXPECT_FALSE(ps.goes_direct("corp.example.evil.test"));
}

}  // namespace
}  // namespace vigil::upstream

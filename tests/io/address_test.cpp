// CIDR and port matching, the private-destination classifier, and the hosts file.
#include "io/address.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

namespace vigil::io {
namespace {

address ip(const char* s) { return boost::asio::ip::make_address(s); }

TEST(NetUtil, Cidr) {
    auto c = Cidr::parse("10.0.0.0/8");
    ASSERT_TRUE(c);
    EXPECT_TRUE(c->contains(ip("10.255.1.2")));
    EXPECT_FALSE(c->contains(ip("11.0.0.1")));
    EXPECT_TRUE(c->contains(ip("::ffff:10.1.2.3")));  // IPv4-mapped
    auto v6 = Cidr::parse("2001:db8::/33");
    ASSERT_TRUE(v6);
    EXPECT_TRUE(v6->contains(ip("2001:db8:7fff::1")));
    EXPECT_FALSE(v6->contains(ip("2001:db8:8000::1")));
    EXPECT_TRUE(Cidr::parse("0.0.0.0/0")->contains(ip("8.8.8.8")));
    EXPECT_TRUE(Cidr::parse("192.0.2.1")->contains(ip("192.0.2.1")));
    EXPECT_FALSE(Cidr::parse("192.0.2.1")->contains(ip("192.0.2.2")));
    EXPECT_FALSE(Cidr::parse("10.0.0.0/33"));
    EXPECT_FALSE(Cidr::parse("10.0.0.0/"));
    EXPECT_FALSE(Cidr::parse("banana"));
}

TEST(NetUtil, NonPublicAddresses) {
    for (const char* a : {"127.0.0.1", "10.1.1.1", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254",
                          "100.64.0.1", "0.0.0.0", "224.0.0.1", "::1", "::", "fe80::1", "fd00::1", "::ffff:127.0.0.1",
                          "ff02::1"})
        EXPECT_TRUE(is_non_public(ip(a))) << a;
    for (const char* a : {"8.8.8.8", "172.32.0.1", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8"})
        EXPECT_FALSE(is_non_public(ip(a))) << a;
}

TEST(NetUtil, PortRanges) {
    EXPECT_TRUE(PortRange::parse("443")->contains(443));
    EXPECT_TRUE(PortRange::parse("1024-65535")->contains(1024));
    EXPECT_FALSE(PortRange::parse("1024-65535")->contains(1023));
    EXPECT_FALSE(PortRange::parse("0"));
    EXPECT_FALSE(PortRange::parse("10-5"));
    EXPECT_FALSE(PortRange::parse("x"));
}

TEST(NetUtil, HostsFile) {
    char tmpl[] = "/tmp/vigil-hosts-XXXXXX";
    int fd = ::mkstemp(tmpl);
    ::close(fd);
    std::ofstream(tmpl) << "# comment\n127.0.0.1 exact.test Other.Test.\n::1 *.wild.test\n\n";
    HostsFile h = HostsFile::load(tmpl);
    EXPECT_EQ(h.lookup("exact.test")->to_string(), "127.0.0.1");
    EXPECT_EQ(h.lookup("OTHER.test")->to_string(), "127.0.0.1");
    EXPECT_EQ(h.lookup("a.wild.test")->to_string(), "::1");
    EXPECT_EQ(h.lookup("a.b.wild.test")->to_string(), "::1");
    EXPECT_FALSE(h.lookup("wild.test"));         // *.x matches below x only
    EXPECT_FALSE(h.lookup("notwild.test"));      // label-anchored, not a substring
    EXPECT_FALSE(h.lookup("exact.test.evil"));
    std::ofstream(tmpl) << "999.1.1.1 bad.test\n";
    EXPECT_THROW(HostsFile::load(tmpl), std::runtime_error);
    ::unlink(tmpl);
}

}  // namespace
}  // namespace vigil::io

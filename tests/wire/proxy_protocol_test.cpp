// PROXY protocol headers: v1 lines and v2 binary heads, cut at every byte, malformed, and the
// bytes after the header left for the request.
#include "wire/proxy_protocol.hpp"

#include <gtest/gtest.h>

namespace vigil::wire {
namespace {

using S = ProxyHeader::Status;

std::string v2(unsigned char command, unsigned char family, const std::string& addresses) {
    std::string h("\r\n\r\n\0\r\nQUIT\n", 12);
    h += char(0x20 | command);
    h += char(family);
    h += char(addresses.size() >> 8);
    h += char(addresses.size() & 0xff);
    return h + addresses;
}

TEST(ProxyProtocol, V1NamesTheClientAndLeavesTheRequest) {
    const std::string data = "PROXY TCP4 192.0.2.7 10.0.0.1 51234 3128\r\nGET / HTTP/1.1\r\n";
    auto h = parse_proxy_header(data);
    ASSERT_EQ(h.status, S::ok);
    EXPECT_EQ(h.version, 1);
    EXPECT_EQ(data.substr(h.size), "GET / HTTP/1.1\r\n");
    EXPECT_EQ(h.source->address().to_string(), "192.0.2.7");
    EXPECT_EQ(h.source->port(), 51234);
    for (size_t n = 0; n < data.find("\r\n") + 2; ++n) EXPECT_EQ(parse_proxy_header(data.substr(0, n)).status, S::need_more) << n;
    auto v6 = parse_proxy_header("PROXY TCP6 2001:db8::1 2001:db8::2 443 3128\r\n");
    ASSERT_EQ(v6.status, S::ok);
    EXPECT_EQ(v6.source->address().to_string(), "2001:db8::1");
    auto unknown = parse_proxy_header("PROXY UNKNOWN\r\n");
    EXPECT_EQ(unknown.status, S::ok);
    EXPECT_FALSE(unknown.source);
}

TEST(ProxyProtocol, V2Ipv4Ipv6AndLocal) {
    std::string a4 = std::string("\xc0\x00\x02\x07\x0a\x00\x00\x01", 8) + std::string("\xc8\x22\x0c\x38", 4);
    const std::string data = v2(1, 0x11, a4) + "CONNECT";
    auto h = parse_proxy_header(data);
    ASSERT_EQ(h.status, S::ok);
    EXPECT_EQ(h.version, 2);
    EXPECT_EQ(h.source->address().to_string(), "192.0.2.7");
    EXPECT_EQ(h.source->port(), 51234);
    EXPECT_EQ(data.substr(h.size), "CONNECT");
    for (size_t n = 1; n < 28; ++n) EXPECT_EQ(parse_proxy_header(data.substr(0, n)).status, S::need_more) << n;
    std::string a6(36, '\0');
    a6[0] = '\x20', a6[1] = '\x01', a6[15] = '\x05', a6[32] = '\x01', a6[33] = '\xbb';
    auto h6 = parse_proxy_header(v2(1, 0x21, a6));
    ASSERT_EQ(h6.status, S::ok);
    EXPECT_EQ(h6.source->address().to_string(), "2001::5");
    EXPECT_EQ(h6.source->port(), 443);
    auto local = parse_proxy_header(v2(0, 0x00, ""));
    EXPECT_EQ(local.status, S::ok);
    EXPECT_FALSE(local.source);
    // TLVs after the addresses are skipped with them.
    auto tlv = parse_proxy_header(v2(1, 0x11, a4 + std::string("\x04\x00\x01\x00", 4)) + "GET");
    ASSERT_EQ(tlv.status, S::ok);
    EXPECT_EQ(tlv.size, 16u + 16u);
}

TEST(ProxyProtocol, MalformedHeadersAreInvalidAndOthersAreNone) {
    EXPECT_EQ(parse_proxy_header("GET / HTTP/1.1\r\n").status, S::none);
    EXPECT_EQ(parse_proxy_header("CONNECT a:443").status, S::none);
    EXPECT_EQ(parse_proxy_header("POST /").status, S::none);
    EXPECT_EQ(parse_proxy_header("PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\n").status, S::invalid);
    EXPECT_EQ(parse_proxy_header("PROXY TCP4 ::1 ::1 1 1\r\n").status, S::invalid);
    EXPECT_EQ(parse_proxy_header("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n").status, S::invalid);
    EXPECT_EQ(parse_proxy_header("PROXY " + std::string(200, 'A')).status, S::invalid);
    EXPECT_EQ(parse_proxy_header(v2(1, 0x11, "short")).status, S::invalid);
    EXPECT_EQ(parse_proxy_header(v2(7, 0x11, std::string(12, '\0'))).status, S::invalid);
    EXPECT_EQ(parse_proxy_header(v2(1, 0x12, std::string(12, '\0'))).status, S::invalid);  // UDP
    std::string big = v2(1, 0x11, std::string(600, '\0'));
    EXPECT_EQ(parse_proxy_header(big).status, S::invalid);
}

}  // namespace
}  // namespace vigil::wire

// PROXY protocol parsing, per haproxy's proxy-protocol.txt (v1: a text line; v2: a 16-byte
// binary head, then the addresses and optional TLVs, which are skipped).
#include "wire/proxy_protocol.hpp"

#include <cstring>

namespace vigil::wire {
namespace {

constexpr char kV2Signature[12] = {'\r', '\n', '\r', '\n', '\0', '\r', '\n', 'Q', 'U', 'I', 'T', '\n'};
constexpr size_t kV1Max = 107;
constexpr size_t kV2MaxBody = 536;

ProxyHeader invalid(std::string why) {
    ProxyHeader h;
    h.status = ProxyHeader::Status::invalid;
    h.error = std::move(why);
    return h;
}

std::optional<uint16_t> port_of(std::string_view s) {
    if (s.empty() || s.size() > 5 || (s.size() > 1 && s[0] == '0')) return std::nullopt;
    unsigned v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + unsigned(c - '0');
    }
    return v <= 65535 ? std::optional<uint16_t>(uint16_t(v)) : std::nullopt;
}

ProxyHeader parse_v1(std::string_view data) {
    const size_t eol = data.find("\r\n");
    if (eol == std::string_view::npos) {
        if (data.size() >= kV1Max) return invalid("PROXY v1 line longer than 107 bytes");
        return {};
    }
    if (eol + 2 > kV1Max) return invalid("PROXY v1 line longer than 107 bytes");
    std::string_view line = data.substr(6, eol - 6);  // after "PROXY "
    std::string_view fields[5];
    size_t n = 0;
    for (size_t at = 0; at <= line.size() && n < 5;) {
        size_t sp = line.find(' ', at);
        if (sp == std::string_view::npos) sp = line.size();
        fields[n++] = line.substr(at, sp - at);
        at = sp + 1;
        if (sp == line.size()) break;
    }
    ProxyHeader h;
    h.size = eol + 2;
    h.version = 1;
    if (n >= 1 && fields[0] == "UNKNOWN") {
        h.status = ProxyHeader::Status::ok;  // the balancer could not tell: the connection's own address
        return h;
    }
    if (n != 5 || (fields[0] != "TCP4" && fields[0] != "TCP6")) return invalid("malformed PROXY v1 line");
    boost::system::error_code ec;
    auto addr = boost::asio::ip::make_address(std::string(fields[1]), ec);
    auto port = port_of(fields[3]);
    if (ec || !port || !port_of(fields[4]) || addr.is_v4() != (fields[0] == "TCP4"))
        return invalid("malformed PROXY v1 addresses");
    h.status = ProxyHeader::Status::ok;
    h.source = io::tcp::endpoint(addr, *port);
    return h;
}

ProxyHeader parse_v2(std::string_view data) {
    if (data.size() < 16) return {};
    const auto* p = reinterpret_cast<const unsigned char*>(data.data());
    const unsigned version = p[12] >> 4, command = p[12] & 0x0f, family = p[13] >> 4, transport = p[13] & 0x0f;
    const size_t len = (size_t(p[14]) << 8) | p[15];
    if (version != 2 || command > 1) return invalid("PROXY v2 header with an unknown version or command");
    if (len > kV2MaxBody) return invalid("PROXY v2 header longer than 552 bytes");
    if (data.size() < 16 + len) return {};
    ProxyHeader h;
    h.status = ProxyHeader::Status::ok;
    h.size = 16 + len;
    h.version = 2;
    if (command == 0) return h;  // LOCAL: the balancer's own connection (a health check)
    const unsigned char* a = p + 16;
    if (family == 1 && transport == 1) {  // TCP over IPv4
        if (len < 12) return invalid("PROXY v2 IPv4 addresses cut short");
        boost::asio::ip::address_v4::bytes_type b;
        std::memcpy(b.data(), a, 4);
        h.source = io::tcp::endpoint(boost::asio::ip::address_v4(b), uint16_t((a[8] << 8) | a[9]));
    } else if (family == 2 && transport == 1) {  // TCP over IPv6
        if (len < 36) return invalid("PROXY v2 IPv6 addresses cut short");
        boost::asio::ip::address_v6::bytes_type b;
        std::memcpy(b.data(), a, 16);
        h.source = io::tcp::endpoint(boost::asio::ip::address_v6(b), uint16_t((a[32] << 8) | a[33]));
    } else if (family != 0) {
        return invalid("PROXY v2 for a transport other than TCP");
    }
    return h;
}

}  // namespace

ProxyHeader parse_proxy_header(std::string_view data) {
    const size_t v2 = std::min(data.size(), sizeof kV2Signature);
    if (v2 > 0 && std::memcmp(data.data(), kV2Signature, v2) == 0)
        return v2 < sizeof kV2Signature ? ProxyHeader{} : parse_v2(data);
    static constexpr std::string_view v1 = "PROXY ";
    const size_t n = std::min(data.size(), v1.size());
    if (n > 0 && data.substr(0, n) == v1.substr(0, n)) return n < v1.size() ? ProxyHeader{} : parse_v1(data);
    ProxyHeader h;
    h.status = data.empty() ? ProxyHeader::Status::need_more : ProxyHeader::Status::none;
    return h;
}

}  // namespace vigil::wire

// The PROXY protocol (HAProxy's, versions 1 and 2): the header a load balancer sends before the
// client's bytes, naming the client's address. Parsed here without I/O; the accept phase reads,
// and trusts it only from proxy.trusted_balancers.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "io/asio.hpp"

namespace vigil::wire {

struct ProxyHeader {
    enum class Status { need_more, none, invalid, ok } status = Status::need_more;
    size_t size = 0;                          // bytes of the header (ok)
    int version = 0;                          // 1 or 2 (ok)
    std::optional<io::tcp::endpoint> source;  // the client; none for LOCAL (the balancer's own check)
    std::string error;                        // invalid: why
};

// `data`: the first bytes of the connection. need_more until a header is complete or known
// absent; none when the bytes are not a PROXY header (only acceptable with "optional");
// invalid for a malformed one. v1 lines are at most 107 bytes, v2 headers at most 16 + 536
// here (larger TLV areas are refused).
ProxyHeader parse_proxy_header(std::string_view data);

}  // namespace vigil::wire

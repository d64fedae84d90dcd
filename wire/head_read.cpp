// Request heads: scanning the buffered bytes, parsing a whole head, ending a read that failed
// (the reading itself, generic over streams, is in head_read.hpp).
#include "wire/head_read.hpp"

namespace vigil::wire {
namespace {

HeadRead refused(int status, std::string reason) { return HeadRead{HeadRead::rejected, nullptr, {status, std::move(reason)}}; }

HeadRead too_large(size_t limit, Counters& counters) {
    count(counters.header_too_large);
    return refused(431, "the request head is larger than " + std::to_string(limit) + " bytes");
}

}  // namespace

HeadScan scan_head(beast::flat_buffer& buf, size_t& scanned, size_t limit, Counters& counters) {
    HeadScan out;
    // RFC 9112 2.2: ignore empty lines before a request line.
    for (;;) {
        std::string_view data(static_cast<const char*>(buf.data().data()), buf.size());
        size_t blank = 0;
        while (data.substr(blank, 2) == "\r\n") blank += 2;
        if (!blank) break;
        buf.consume(blank);
        scanned = 0;
    }
    std::string_view data(static_cast<const char*>(buf.data().data()), buf.size());
    if (auto end = data.find("\r\n\r\n", scanned > 3 ? scanned - 3 : 0); end != std::string_view::npos) {
        out.state = HeadScan::complete;
        out.head_len = end + 4;
        return out;
    }
    // A head that can never complete (bare LF or CR, an impossible request line) is answered
    // now, not when header_read runs out.
    if (auto bad = check_partial_head(data, scanned)) {
        out.state = HeadScan::rejected;
        out.rejection = *bad;
        return out;
    }
    scanned = data.size();
    if (data.size() >= limit) {
        HeadRead r = too_large(limit, counters);
        out.state = HeadScan::rejected;
        out.rejection = r.rejection;
    }
    return out;
}

HeadRead parse_head(beast::flat_buffer& buf, size_t head_len, Context cx) {
    const size_t limit = cx.cfg.max_header_bytes;
    if (head_len > limit) return too_large(limit, cx.counters);
    std::string_view head(static_cast<const char*>(buf.data().data()), head_len);
    if (auto bad = check_raw_head(head)) return refused(bad->status, bad->reason);
    HeadRead out;
    out.parser = std::make_unique<RequestParser>();
    out.parser->header_limit(static_cast<std::uint32_t>(limit));
    out.parser->body_limit(boost::none);  // bodies are streamed, never buffered whole
    out.parser->eager(false);
    error_code ec;
    size_t used = out.parser->put(net::buffer(head.data(), head.size()), ec);
    if (ec || !out.parser->is_header_done())
        return refused(400, "malformed request: " + (ec ? ec.message() : std::string("incomplete head")));
    buf.consume(used);
    if (auto bad = check_request_fields(out.parser->get().base(), cx.cfg.max_headers))
        return refused(bad->status, bad->reason);
    // RFC 9112 6.1: Transfer-Encoding in an HTTP/1.0 message means faulty framing (Beast would
    // parse the body as chunked, and it would go on as an HTTP/1.1 chunked request).
    if (out.parser->get().version() < 11 && out.parser->get().count(http::field::transfer_encoding))
        return refused(400, "Transfer-Encoding in an HTTP/1.0 request");
    out.status = HeadRead::ok;
    return out;
}

HeadRead head_read_ended(const error_code& ec, bool started, const HeadDeadline& when, Context cx) {
    if (ec != beast::error::timeout) return HeadRead{HeadRead::closed};
    if (!started) return HeadRead{HeadRead::idle};
    count(cx.counters.header_timeout);
    const auto secs = when.head.count() > 0 ? when.head.count() : cx.cfg.header_read.count();
    return refused(408, "the request head did not arrive within " + std::to_string(secs) +
                            " seconds (timeouts.header_read)");
}

}  // namespace vigil::wire

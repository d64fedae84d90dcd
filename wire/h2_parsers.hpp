// The two sides of wire/h2_stream.hpp's translation: what a stream tells its HTTP/2
// connection (H2Sink), and the parsers of the HTTP/1.1 the relay writes into a stream — a
// response on the client leg, a request on the origin leg.
#pragma once

#include <cstdint>
#include <string>

#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/fields.hpp>

#include "io/asio.hpp"

namespace vigil::wire {

namespace http = boost::beast::http;
using io::error_code;
using bsv = boost::beast::string_view;

// What a stream tells its connection (session/h2_connection.cpp, upstream/h2_origin.cpp).
class H2Sink {
public:
    virtual ~H2Sink() = default;
    // The relay took `n` bytes of request body: the client may send that much more.
    virtual void consumed(int32_t id, size_t n) = 0;
    // The head the relay wrote, then (body_ready) body bytes or the end, are waiting in the stream.
    virtual void head_ready(int32_t id) = 0;
    virtual void body_ready(int32_t id) = 0;
};

// What both parsers share: the fields kept, the body (de-chunked) appended to the stream's
// output, no limit but the header's (the relay applies its own).
template <bool isRequest>
class H2MessageParser : public http::basic_parser<isRequest> {
public:
    explicit H2MessageParser(std::string& body_out) : out_(body_out) {
        this->header_limit(1 << 20);
        this->body_limit(boost::none);
        this->eager(true);
    }
    http::fields fields;

private:
    void on_field_impl(http::field f, bsv name, bsv value, error_code&) override {
        if (f != http::field::unknown) fields.insert(f, value);
        else fields.insert(name, value);
    }
    void on_header_impl(error_code&) override {}
    void on_body_init_impl(const boost::optional<uint64_t>&, error_code&) override {}
    size_t on_body_impl(bsv body, error_code&) override {
        out_.append(body.data(), body.size());
        return body.size();
    }
    void on_chunk_header_impl(uint64_t, bsv, error_code&) override {}
    size_t on_chunk_body_impl(uint64_t, bsv body, error_code&) override {
        out_.append(body.data(), body.size());
        return body.size();
    }
    void on_finish_impl(error_code&) override {}
    std::string& out_;
};

// The relay's HTTP/1.1 response (client leg): interim (1xx) heads are dropped by the stream,
// the final head's status and fields kept.
class H2ResponseParser : public H2MessageParser<false> {
public:
    H2ResponseParser(std::string& body_out, bool head_request) : H2MessageParser(body_out) { skip(head_request); }
    unsigned status = 0;

private:
    void on_request_impl(http::verb, bsv, bsv, int, error_code&) override {}
    void on_response_impl(int code, bsv, int, error_code&) override { status = unsigned(code); }
};

// The relay's HTTP/1.1 request (origin leg): the request line kept.
class H2RequestParser : public H2MessageParser<true> {
public:
    H2RequestParser(std::string& body_out, bool) : H2MessageParser(body_out) {}
    unsigned status = 0;  // a request has none (no interim heads to drop)
    http::verb method = http::verb::unknown;
    std::string method_string, target;

private:
    void on_request_impl(http::verb m, bsv ms, bsv t, int, error_code&) override {
        method = m;
        method_string.assign(ms.data(), ms.size());
        target.assign(t.data(), t.size());
    }
    void on_response_impl(int, bsv, int, error_code&) override {}
};

}  // namespace vigil::wire

// Fuzz target: the request-head path — raw checks, Beast's parser, framing rules, URL and
// authority parsing — exactly as http/body.hpp runs them on client bytes.
#include <boost/beast/http.hpp>

#include "wire/framing.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    namespace http = boost::beast::http;
    std::string_view head(reinterpret_cast<const char*>(data), size);
    // As the head arrives: every prefix, checked incrementally as read_request_head does.
    for (size_t cut = 0, from = 0; cut <= size; cut += 1 + cut / 3) {
        if (vigil::wire::check_partial_head(head.substr(0, cut), from)) break;
        from = cut;
    }
    (void)vigil::wire::has_bare_lf(head);
    (void)vigil::wire::first_chunk_line_bad(head);
    (void)vigil::wire::decodable_codings(head);
    if (vigil::wire::check_raw_head(head)) return 0;
    http::request_parser<http::buffer_body> p;
    p.header_limit(64 * 1024);
    p.body_limit(boost::none);
    p.eager(false);
    boost::system::error_code ec;
    p.put(boost::asio::buffer(data, size), ec);
    if (ec || !p.is_header_done()) return 0;
    if (vigil::wire::check_request_fields(p.get().base(), 100)) return 0;
    auto target = p.get().target();
    vigil::wire::parse_absolute_url(target);
    vigil::wire::parse_authority(target, std::nullopt);
    vigil::wire::parse_authority(p.get()[http::field::host], uint16_t(80));
    vigil::wire::HopByHop hop(p.get().base());
    for (const auto& f : p.get()) (void)hop.contains(f.name_string());
    (void)vigil::wire::field_list(p.get().base(), http::field::content_encoding);
    return 0;
}

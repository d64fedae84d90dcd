// Choosing a coding and the streaming compressors (through the real gateway: test_traffic.py).
#include "wire/compress.hpp"

#include <brotli/decode.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <string>

namespace vigil::wire {
namespace {

std::string gunzip(const std::string& in) {
    z_stream z{};
    inflateInit2(&z, 15 + 16);
    std::string out(4 << 20, '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z.avail_in = static_cast<uInt>(in.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    const int rc = inflate(&z, Z_FINISH);
    out.resize(z.total_out);
    inflateEnd(&z);
    return rc == Z_STREAM_END ? out : "(not a complete gzip stream)";
}

std::string unbrotli(const std::string& in) {
    std::string out(4 << 20, '\0');
    size_t n = out.size();
    if (BrotliDecoderDecompress(in.size(), reinterpret_cast<const uint8_t*>(in.data()), &n,
                                reinterpret_cast<uint8_t*>(out.data())) != BROTLI_DECODER_RESULT_SUCCESS)
        return "(not a complete br stream)";
    out.resize(n);
    return out;
}

std::string text(size_t n) {
    std::string s;
    while (s.size() < n) s += "<p>the quick brown fox " + std::to_string(s.size() % 97) + "</p>\n";
    return s.substr(0, n);
}

TEST(Compress, StreamsThatDecodeWholeAndFlushEveryPiece) {
    const std::string body = text(300'000);
    for (Coding c : {Coding::gzip, Coding::br}) {
        auto z = Compressor::make(c);
        std::string out;
        for (size_t i = 0; i < body.size(); i += 65536) {
            const auto piece = z->feed(std::string_view(body).substr(i, 65536), i + 65536 >= body.size());
            EXPECT_FALSE(piece.empty());  // flushed: the client can decode what it has so far
            out.append(piece);
        }
        EXPECT_TRUE((c == Coding::gzip ? gunzip(out) : unbrotli(out)) == body) << coding_name(c);
        EXPECT_EQ(z->bytes_in(), body.size());
        EXPECT_EQ(z->bytes_out(), out.size());
        EXPECT_LT(out.size(), body.size() / 10);
    }
}

TEST(Compress, EmptyBodiesAndEmptyPieces) {
    for (Coding c : {Coding::gzip, Coding::br}) {
        auto z = Compressor::make(c);
        std::string out(z->feed("", false));
        out += z->feed("abc", false);
        out += z->feed("", false);
        out += z->feed("", true);
        EXPECT_EQ(c == Coding::gzip ? gunzip(out) : unbrotli(out), "abc") << coding_name(c);
        auto empty = Compressor::make(c);
        const std::string only(empty->feed("", true));
        EXPECT_EQ(c == Coding::gzip ? gunzip(only) : unbrotli(only), "") << coding_name(c);
    }
}

TEST(Compress, AcceptEncoding) {
    EXPECT_EQ(accepted_coding("gzip, deflate, br"), Coding::br);
    EXPECT_EQ(accepted_coding("gzip"), Coding::gzip);
    EXPECT_EQ(accepted_coding("x-gzip"), Coding::gzip);
    EXPECT_EQ(accepted_coding("br;q=0.5, gzip"), Coding::gzip);
    EXPECT_EQ(accepted_coding("BR ; Q=1, gzip;q=0.9"), Coding::br);
    EXPECT_EQ(accepted_coding("*"), Coding::gzip);
    EXPECT_EQ(accepted_coding("*, gzip;q=0"), std::nullopt);
    EXPECT_EQ(accepted_coding("gzip;q=0"), std::nullopt);
    EXPECT_EQ(accepted_coding("br;q=0, gzip;q=0"), std::nullopt);
    EXPECT_EQ(accepted_coding("identity"), std::nullopt);
    EXPECT_EQ(accepted_coding(""), std::nullopt);
    EXPECT_EQ(accepted_coding("gzip;q=nonsense"), std::nullopt);
    EXPECT_EQ(accepted_coding("gzip;q=2"), std::nullopt);
}

TEST(Compress, TypesAndNoTransform) {
    for (const char* t : {"text/html", "text/plain; charset=utf-8", "TEXT/CSS", "application/json", "application/javascript",
                          "application/xml", "image/svg+xml", "application/vnd.api+json", "application/atom+xml"})
        EXPECT_TRUE(compressible_type(t)) << t;
    for (const char* t : {"", "image/png", "application/octet-stream", "text/event-stream", "application/zip",
                          "video/mp4", "application/+json", "application/jsonx"})
        EXPECT_FALSE(compressible_type(t)) << t;
    EXPECT_TRUE(has_no_transform("no-transform"));
    EXPECT_TRUE(has_no_transform("public, No-Transform, max-age=60"));
    EXPECT_FALSE(has_no_transform("public, max-age=60"));
    EXPECT_FALSE(has_no_transform("no-transformation"));
}

}  // namespace
}  // namespace vigil::wire

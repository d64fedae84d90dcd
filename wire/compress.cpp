// gzip (zlib) and br (libbrotlienc) streaming compressors, and the choice of coding.
#include "wire/compress.hpp"

#include "wire/framing.hpp"

#include <brotli/encode.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <stdexcept>
#include <vector>

namespace vigil::wire {
namespace {

class Gzip final : public Compressor {
public:
    Gzip() {
        // windowBits 15 + 16: a gzip wrapper; memLevel 8 (zlib's default).
        if (deflateInit2(&z_, 5, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            throw std::runtime_error("gzip: cannot start the compressor");
    }
    ~Gzip() override { deflateEnd(&z_); }
    Coding coding() const override { return Coding::gzip; }

    std::string_view feed(std::string_view in, bool last) override {
        out_buf_.clear();
        z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
        z_.avail_in = static_cast<uInt>(in.size());
        const int flush = last ? Z_FINISH : Z_SYNC_FLUSH;
        for (;;) {
            const size_t have = out_buf_.size();
            out_buf_.resize(have + std::max<size_t>(16 * 1024, in.size() / 2));
            z_.next_out = reinterpret_cast<Bytef*>(out_buf_.data() + have);
            z_.avail_out = static_cast<uInt>(out_buf_.size() - have);
            const int rc = deflate(&z_, flush);
            out_buf_.resize(out_buf_.size() - z_.avail_out);
            if (rc == Z_STREAM_END) break;
            if (rc != Z_OK && rc != Z_BUF_ERROR) throw std::runtime_error("gzip: compression failed");
            if (z_.avail_out != 0 && z_.avail_in == 0 && !last) break;  // all input taken, flushed
        }
        in_ += in.size();
        out_ += out_buf_.size();
        return {out_buf_.data(), out_buf_.size()};
    }

private:
    z_stream z_{};
    std::string out_buf_;
};

class Brotli final : public Compressor {
public:
    Brotli() : s_(BrotliEncoderCreateInstance(nullptr, nullptr, nullptr)) {
        if (!s_) throw std::runtime_error("br: cannot start the compressor");
        BrotliEncoderSetParameter(s_, BROTLI_PARAM_QUALITY, 5);
        BrotliEncoderSetParameter(s_, BROTLI_PARAM_LGWIN, 18);
    }
    ~Brotli() override { BrotliEncoderDestroyInstance(s_); }
    Coding coding() const override { return Coding::br; }

    std::string_view feed(std::string_view in, bool last) override {
        out_buf_.clear();
        size_t avail_in = in.size();
        const auto* next_in = reinterpret_cast<const uint8_t*>(in.data());
        const auto op = last ? BROTLI_OPERATION_FINISH : BROTLI_OPERATION_FLUSH;
        for (;;) {
            size_t avail_out = 0;
            if (!BrotliEncoderCompressStream(s_, op, &avail_in, &next_in, &avail_out, nullptr, nullptr))
                throw std::runtime_error("br: compression failed");
            // Take what the encoder has ready (its own buffer; no copy until here).
            size_t size = 0;
            const uint8_t* out = BrotliEncoderTakeOutput(s_, &size);
            out_buf_.append(reinterpret_cast<const char*>(out), size);
            const bool done = last ? BrotliEncoderIsFinished(s_) : (avail_in == 0 && !BrotliEncoderHasMoreOutput(s_));
            if (done) break;
        }
        in_ += in.size();
        out_ += out_buf_.size();
        return {out_buf_.data(), out_buf_.size()};
    }

private:
    BrotliEncoderState* s_;
    std::string out_buf_;
};

}  // namespace

std::unique_ptr<Compressor> Compressor::make(Coding c) {
    if (c == Coding::br) return std::make_unique<Brotli>();
    return std::make_unique<Gzip>();
}

std::optional<Coding> accepted_coding(std::string_view header) {
    double q_br = -1, q_gzip = -1, q_star = -1;
    while (!header.empty()) {
        const size_t comma = header.find(',');
        std::string_view item = header.substr(0, comma);
        header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
        const size_t semi = item.find(';');
        const std::string name = lower(trim(item.substr(0, semi)));
        double q = 1;
        if (semi != std::string_view::npos) {
            std::string params = lower(item.substr(semi + 1));
            params.erase(std::remove_if(params.begin(), params.end(), [](char c) { return c == ' ' || c == '\t'; }),
                         params.end());
            if (params.rfind("q=", 0) == 0) {
                char* end = nullptr;
                q = std::strtod(params.c_str() + 2, &end);
                if (end == params.c_str() + 2 || q < 0 || q > 1) q = 0;  // unreadable: not accepted
            }
        }
        if (name == "br") q_br = q;
        else if (name == "gzip" || name == "x-gzip") q_gzip = q;
        else if (name == "*") q_star = q;
    }
    if (q_gzip < 0) q_gzip = q_star;  // "*" covers codings not named
    if (q_br < 0) q_br = q_star >= 0 ? 0 : -1;  // but br is only chosen when named
    if (q_br > 0 && q_br >= q_gzip) return Coding::br;
    if (q_gzip > 0) return Coding::gzip;
    return std::nullopt;
}

bool compressible_type(std::string_view content_type) {
    const std::string t = lower(trim(content_type.substr(0, content_type.find(';'))));
    if (t.rfind("text/", 0) == 0) return t != "text/event-stream";
    if (t == "image/svg+xml") return true;
    if (t.rfind("application/", 0) != 0) return false;
    const std::string sub = t.substr(12);
    static const char* kTypes[] = {"json", "javascript", "x-javascript", "ecmascript", "xml", "xhtml+xml",
                                   "rss+xml", "atom+xml", "ld+json", "manifest+json"};
    for (const char* k : kTypes)
        if (sub == k) return true;
    auto ends = [&](std::string_view suffix) {
        return sub.size() > suffix.size() && sub.compare(sub.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    return ends("+json") || ends("+xml");
}

bool has_no_transform(std::string_view cc) {
    while (!cc.empty()) {
        const size_t comma = cc.find(',');
        if (iequals(trim(cc.substr(0, comma)), "no-transform")) return true;
        if (comma == std::string_view::npos) break;
        cc.remove_prefix(comma + 1);
    }
    return false;
}

}  // namespace vigil::wire

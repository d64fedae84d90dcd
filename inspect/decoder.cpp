// zlib (gzip/deflate) and brotli streaming decoders.
#include "inspect/decoder.hpp"

#include <algorithm>
#include <cctype>

#include <brotli/decode.h>
#include <zlib.h>

namespace vigil::inspect {
namespace {

class ZlibDecoder : public Decoder {
public:
    explicit ZlibDecoder(bool gzip) : gzip_(gzip) {
        zs_ = {};
        ok_ = inflateInit2(&zs_, gzip ? 16 + MAX_WBITS : MAX_WBITS) == Z_OK;
    }
    ~ZlibDecoder() override { inflateEnd(&zs_); }
    Result feed(std::string_view in, std::string& out) override {
        if (!ok_) return corrupt;
        zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
        zs_.avail_in = static_cast<uInt>(in.size());
        char buf[16384];
        while (zs_.avail_in > 0 && !done_) {
            zs_.next_out = reinterpret_cast<Bytef*>(buf);
            zs_.avail_out = sizeof buf;
            int rc = inflate(&zs_, Z_NO_FLUSH);
            if (rc == Z_DATA_ERROR && !gzip_ && !tried_raw_ && total_ == 0) {
                // "deflate" is often sent as a raw stream without the zlib header.
                tried_raw_ = true;
                inflateEnd(&zs_);
                zs_ = {};
                inflateInit2(&zs_, -MAX_WBITS);
                zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
                zs_.avail_in = static_cast<uInt>(in.size());
                continue;
            }
            if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) return corrupt;
            size_t n = sizeof buf - zs_.avail_out;
            out.append(buf, n);
            if (out.size() > kMaxPerFeed) return overflow;
            total_ += n;
            if (rc == Z_STREAM_END) done_ = true;
            if (rc == Z_BUF_ERROR && n == 0) break;
        }
        return ok;
    }

private:
    z_stream zs_;
    bool gzip_, ok_ = false, done_ = false, tried_raw_ = false;
    size_t total_ = 0;
};

class BrotliDecoder : public Decoder {
public:
    BrotliDecoder() : st_(BrotliDecoderCreateInstance(nullptr, nullptr, nullptr)) {}
    ~BrotliDecoder() override { BrotliDecoderDestroyInstance(st_); }
    Result feed(std::string_view in, std::string& out) override {
        size_t avail_in = in.size();
        auto* next_in = reinterpret_cast<const uint8_t*>(in.data());
        for (;;) {
            uint8_t buf[16384];
            size_t avail_out = sizeof buf;
            uint8_t* next_out = buf;
            auto rc = BrotliDecoderDecompressStream(st_, &avail_in, &next_in, &avail_out, &next_out, nullptr);
            out.append(reinterpret_cast<char*>(buf), sizeof buf - avail_out);
            if (rc == BROTLI_DECODER_RESULT_ERROR) return corrupt;
            if (out.size() > kMaxPerFeed) return overflow;
            if (rc == BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT) continue;
            return ok;  // needs more input, or finished
        }
    }

private:
    BrotliDecoderState* st_;
};

}  // namespace

DecodeChain::DecodeChain(std::string_view header, DecodeLimits limits) : limits_(limits) {
    std::vector<std::string> codings;
    std::string cur;
    for (char c : std::string(header) + ",") {
        if (c == ',') {
            if (!cur.empty()) codings.push_back(cur);
            cur.clear();
        } else if (!std::isspace(static_cast<unsigned char>(c))) {
            cur += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
    }
    // More codings than any real response uses is an evasion (or a decompression bomb in
    // layers): unscannable, like an unknown coding.
    constexpr size_t kMaxCodings = 4;
    if (std::count_if(codings.begin(), codings.end(), [](const std::string& c) { return c != "identity"; }) >
        static_cast<long>(kMaxCodings)) {
        supported_ = false;
        return;
    }
    // Codings are listed in the order they were applied, so they are undone in reverse.
    std::reverse(codings.begin(), codings.end());
    for (const auto& c : codings) {
        if (c == "gzip" || c == "x-gzip") stages_.push_back(std::make_unique<ZlibDecoder>(true));
        else if (c == "deflate") stages_.push_back(std::make_unique<ZlibDecoder>(false));
        else if (c == "br") stages_.push_back(std::make_unique<BrotliDecoder>());
        else if (c != "identity") supported_ = false;
    }
}

DecodeChain::~DecodeChain() = default;

DecodeChain::Status DecodeChain::feed(std::string_view in, std::string& out) {
    out.clear();
    in_total_ += in.size();
    if (stages_.empty()) {
        out.assign(in);
        out_total_ += in.size();
        return Status::ok;
    }
    std::string a(in), b;
    for (auto& stage : stages_) {
        b.clear();
        auto r = stage->feed(a, b);
        if (r == Decoder::corrupt) return Status::corrupt;
        if (r == Decoder::overflow) return Status::bomb;
        a.swap(b);
    }
    out_total_ += a.size();
    out.swap(a);
    if (out_total_ > limits_.max_output || out_total_ > std::max<size_t>(in_total_, 1024) * limits_.max_ratio)
        return Status::bomb;
    return Status::ok;
}

}  // namespace vigil::inspect

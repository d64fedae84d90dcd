// Streaming Content-Encoding decoders (gzip, deflate, br, nested) for scanning only, with
// limits against decompression bombs. The original bytes are what the gateway forwards.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace vigil::inspect {

class Decoder {
public:
    virtual ~Decoder() = default;
    enum Result { ok, corrupt, overflow };
    // Appends decoded bytes to `out`; stops with `overflow` past kMaxPerFeed bytes.
    virtual Result feed(std::string_view in, std::string& out) = 0;
    static constexpr size_t kMaxPerFeed = 16u << 20;
};

struct DecodeLimits {
    size_t max_ratio = 100;            // decoded bytes per encoded byte, over the whole body
    size_t max_output = 64u << 20;     // decoded bytes in total
};

// A chain of decoders for a Content-Encoding header value ("gzip", "br", "gzip, br" ...).
// Unknown codings make the body unscannable (`supported()` false).
class DecodeChain {
public:
    DecodeChain(std::string_view content_encoding, DecodeLimits limits);
    ~DecodeChain();
    bool supported() const { return supported_; }
    // No Content-Encoding: the wire bytes are the decoded bytes (the caller need not copy them).
    bool identity() const { return supported_ && stages_.empty(); }
    enum class Status { ok, corrupt, bomb };
    // Decodes one chunk of the body into `out` (cleared first).
    Status feed(std::string_view in, std::string& out);

private:
    std::vector<std::unique_ptr<Decoder>> stages_;  // applied in order
    bool supported_ = true;
    DecodeLimits limits_;
    size_t in_total_ = 0, out_total_ = 0;
};

}  // namespace vigil::inspect

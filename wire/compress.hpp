// Internal: on-the-fly compression of responses the origin sent uncompressed (gzip or br),
// streaming with bounded memory. No Asio here: the relay feeds it the body piece by piece.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace vigil::wire {

enum class Coding { gzip, br };

inline const char* coding_name(Coding c) { return c == Coding::br ? "br" : "gzip"; }

class Compressor {
public:
    // gzip: zlib level 5, 32 KiB window (~270 KiB of state). br: quality 5, 256 KiB window
    // (under 1 MiB of state).
    static std::unique_ptr<Compressor> make(Coding c);
    virtual ~Compressor() = default;
    // Compresses `in` and flushes, so the client can decode everything so far (streamed and
    // long-polled responses are not held back); with `last`, ends the stream. The returned
    // bytes are valid until the next call. Throws std::runtime_error if the library fails.
    virtual std::string_view feed(std::string_view in, bool last) = 0;
    virtual Coding coding() const = 0;
    uint64_t bytes_in() const { return in_; }
    uint64_t bytes_out() const { return out_; }

protected:
    uint64_t in_ = 0, out_ = 0;
};

// The coding the client prefers among those Vigil makes, from its Accept-Encoding: the highest
// q-value, br on a tie; "*" stands for gzip; q=0 refuses. None when it accepts neither.
std::optional<Coding> accepted_coding(std::string_view accept_encoding);

// Whether a media type is worth compressing: text/* (but not event streams), JSON, JavaScript,
// XML and SVG (application/*+json, application/*+xml, image/svg+xml).
bool compressible_type(std::string_view content_type);

// Whether a Cache-Control value carries the no-transform directive.
bool has_no_transform(std::string_view cache_control);

}  // namespace vigil::wire

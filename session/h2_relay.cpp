// The relay instantiated for HTTP/2 streams (session/h2_stream.hpp) to TLS origins.
#include "session/cached_impl.hpp"
#include "wire/h2_stream.hpp"

namespace vigil::session {

template class HttpRelay<H2Stream, upstream::OriginStream>;

}  // namespace vigil::session

// The relay, instantiated once for each kind of client connection: plain HTTP (TCP both
// ways) and bumped (TLS to the client; to the origin, TLS or a stream on an HTTP/2 connection).
#include "session/cached_impl.hpp"

namespace vigil::session {

template class HttpRelay<beast::tcp_stream, beast::tcp_stream>;
template class HttpRelay<TlsStream, upstream::OriginStream>;

}  // namespace vigil::session

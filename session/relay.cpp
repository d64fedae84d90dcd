// The relay, instantiated once for each kind of client connection: plain HTTP (TCP both
// ways) and bumped (TLS both ways).
#include "session/cached_impl.hpp"

namespace vigil::session {

template class HttpRelay<beast::tcp_stream, beast::tcp_stream>;
template class HttpRelay<TlsStream, TlsStream>;

}  // namespace vigil::session

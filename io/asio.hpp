// The Asio vocabulary every networking library of Vigil uses: short names, the no-exception
// completion token, and deadlines that also accept Beast's test stream (unit tests).
#pragma once

#include <chrono>
#include <type_traits>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/core/tcp_stream.hpp>

namespace vigil::io {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;
// Completion token that reports errors as values: no exceptions on the data path.
inline constexpr auto use_nothrow = net::as_tuple(net::use_awaitable);

template <class Stream>
auto& lowest(Stream& s) {
    return beast::get_lowest_layer(s);
}

// Whether a stream runs on a real socket with Beast's timer (beast::tcp_stream underneath).
template <class Stream>
inline constexpr bool on_socket =
    std::is_same_v<std::remove_cvref_t<decltype(beast::get_lowest_layer(std::declval<Stream&>()))>, beast::tcp_stream>;
// Whether a stream has deadlines: on a socket, or a stream that keeps its own (an HTTP/2
// stream, wire/h2_stream.hpp). Beast's test stream, in unit tests, has none.
template <class Stream>
inline constexpr bool has_deadline =
    requires(Stream& s) { beast::get_lowest_layer(s).expires_after(std::chrono::seconds(1)); };

// The next operation on `s` must complete within `d` (or by `when`), else the socket closes.
template <class Stream>
void expire_after(Stream& s, std::chrono::steady_clock::duration d) {
    if constexpr (has_deadline<Stream>) lowest(s).expires_after(d);
}
template <class Stream>
void expire_at(Stream& s, std::chrono::steady_clock::time_point when) {
    if constexpr (has_deadline<Stream>) lowest(s).expires_at(when);
}

// Cancels what is pending on `s` and leaves it open (a test stream has no such thing: closed).
template <class Stream>
void cancel_pending(Stream& s) {
    if constexpr (on_socket<Stream>) lowest(s).socket().cancel();
    else if constexpr (has_deadline<Stream>) lowest(s).cancel();
    else lowest(s).close();
}

}  // namespace vigil::io

// Runs one coroutine on an io_context to its end, for unit tests on Beast's test stream. A
// coroutine still waiting after 10 s (for input that never comes) fails the test instead of
// hanging it.
#pragma once

#include <chrono>
#include <exception>
#include <optional>

#include <gtest/gtest.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

namespace vigil::test_support {

template <class T>
T run(boost::asio::io_context& ioc, boost::asio::awaitable<T> op) {
    std::optional<T> out;
    boost::asio::co_spawn(ioc, std::move(op), [&](std::exception_ptr e, T v) {
        if (e) std::rethrow_exception(e);
        out = std::move(v);
    });
    ioc.run_for(std::chrono::seconds(10));
    ioc.restart();
    EXPECT_TRUE(out.has_value()) << "the operation did not finish: it waited for input that never comes";
    if (!out) return T{};
    return std::move(*out);
}

}  // namespace vigil::test_support

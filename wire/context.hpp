// What the HTTP/1.1 layer reads and counts: the configuration's limits and timeouts, and the
// gateway's counters. Policy, audit and origins are the session's business, not this layer's.
#pragma once

#include "config/config.hpp"
#include "core/counters.hpp"
#include "core/log.hpp"
#include "io/asio.hpp"

namespace vigil::wire {

using namespace vigil::core;  // counters and logging: the vocabulary of every layer
using namespace vigil::io;
using config::Config;

// Passed by value (two references) into coroutines, which copy their parameters.
struct Context {
    const Config& cfg;
    Counters& counters;
};

}  // namespace vigil::wire

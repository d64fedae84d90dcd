// Fuzz target: vigil-audit's filter parser. The input is "flag\nvalue\n" pairs; every value
// either becomes bound parameters or a FilterError, never a crash or an overflow.
#include <sstream>

#include "audit/filter.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
    std::map<std::string, std::string> opts;
    std::string flag, value;
    while (std::getline(in, flag) && std::getline(in, value)) opts["--" + flag] = value;
    try {
        vigil::audit::Where w = vigil::audit::build_filters(opts, 1'800'000'000'000);
        size_t marks = 0;
        for (char c : w.sql) marks += c == '?';
        if (marks != w.params.size()) __builtin_trap();  // a parameter without its placeholder
    } catch (const vigil::audit::FilterError&) {
    }
    return 0;
}

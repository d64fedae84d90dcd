// Counter serialisation.
#include "gateway/counters.hpp"

namespace vigil::gateway {

std::string Counters::to_json() const {
    std::string out = "{";
#define VIGIL_EMIT(name) out += std::string(out.size() > 1 ? ", " : "") + "\"" #name "\": " + std::to_string(name.load());
    VIGIL_COUNTERS(VIGIL_EMIT)
#undef VIGIL_EMIT
    out += "}";
    return out;
}

}  // namespace vigil::gateway

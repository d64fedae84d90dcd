// Counter serialisation.
#include "core/counters.hpp"

namespace vigil::core {

std::string Counters::to_json() const {
    std::string out = "{";
#define VIGIL_EMIT(name) out += std::string(out.size() > 1 ? ", " : "") + "\"" #name "\": " + std::to_string(name.load());
    VIGIL_COUNTERS(VIGIL_EMIT)
#undef VIGIL_EMIT
    out += "}";
    return out;
}

std::string LabelledCounters::key(const Labels& labels) {
    std::string out;
    out.reserve(96);  // one allocation for the usual label sets (it is built per transaction)
    for (const auto& [name, value] : labels) {
        out += (out.empty() ? "" : ",") + name + "=\"";
        for (char ch : value) {
            if (ch == '\\' || ch == '"') out += '\\', out += ch;
            else if (ch == '\n') out += "\\n";
            else out += ch;
        }
        out += '"';
    }
    return out;
}

void LabelledCounters::add(const std::string& family, const Labels& labels, uint64_t n) {
    const std::string k = key(labels);
    std::lock_guard lock(mu_);
    families_[family][k] += n;
}

uint64_t LabelledCounters::get(const std::string& family, const Labels& labels) const {
    std::lock_guard lock(mu_);
    auto f = families_.find(family);
    if (f == families_.end()) return 0;
    auto it = f->second.find(key(labels));
    return it == f->second.end() ? 0 : it->second;
}

std::string LabelledCounters::prometheus(const std::map<std::string, std::string>& help) const {
    std::lock_guard lock(mu_);
    std::string out;
    for (const auto& [family, series] : families_) {
        if (auto h = help.find(family); h != help.end()) out += "# HELP vigil_" + family + " " + h->second + "\n";
        out += "# TYPE vigil_" + family + " counter\n";
        for (const auto& [labels, n] : series) out += "vigil_" + family + "{" + labels + "} " + std::to_string(n) + "\n";
    }
    return out;
}

}  // namespace vigil::core

// Counter serialisation.
#include "core/counters.hpp"

#include <cstdio>

namespace vigil::core {

void Histogram::observe(std::chrono::steady_clock::duration d) {
    const double seconds = std::chrono::duration<double>(d).count();
    size_t i = 0;
    while (i < kBounds.size() && seconds > kBounds[i]) ++i;
    buckets_[i].fetch_add(1, std::memory_order_relaxed);
    sum_us_.fetch_add(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(d).count()),
                      std::memory_order_relaxed);
    count_.fetch_add(1, std::memory_order_relaxed);
}

std::string Histogram::prometheus(const std::string& name, const std::string& help) const {
    std::string out = "# HELP vigil_" + name + " " + help + "\n# TYPE vigil_" + name + " histogram\n";
    uint64_t cumulative = 0;
    char le[32];
    for (size_t i = 0; i <= kBounds.size(); ++i) {
        cumulative += buckets_[i].load(std::memory_order_relaxed);
        if (i < kBounds.size()) std::snprintf(le, sizeof le, "%g", kBounds[i]);
        out += "vigil_" + name + "_bucket{le=\"" + (i < kBounds.size() ? std::string(le) : "+Inf") + "\"} " +
               std::to_string(cumulative) + "\n";
    }
    char sum[48];
    std::snprintf(sum, sizeof sum, "%.6f", double(sum_us_.load(std::memory_order_relaxed)) / 1e6);
    // _count is the +Inf bucket: the same number, read once (a scrape mid-observe stays consistent).
    out += "vigil_" + name + "_sum " + sum + "\nvigil_" + name + "_count " + std::to_string(cumulative) + "\n";
    return out;
}

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
    // A family named in `help` is announced before its first sample, so dashboards and alert
    // rules find it on a gateway that has not seen such an event yet.
    for (const auto& [family, text] : help)
        if (!families_.count(family)) out += "# HELP vigil_" + family + " " + text + "\n# TYPE vigil_" + family + " counter\n";
    for (const auto& [family, series] : families_) {
        if (auto h = help.find(family); h != help.end()) out += "# HELP vigil_" + family + " " + h->second + "\n";
        out += "# TYPE vigil_" + family + " counter\n";
        for (const auto& [labels, n] : series) out += "vigil_" + family + "{" + labels + "} " + std::to_string(n) + "\n";
    }
    return out;
}

}  // namespace vigil::core

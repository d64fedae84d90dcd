// Parent proxy selection and direct-host matching.
#include "upstream/parents.hpp"

#include <algorithm>
#include <functional>

#include "config/config.hpp"

namespace vigil::upstream {

void Parents::configure(const Config& cfg) {
    parents_.clear();
    for (const auto& pc : cfg.parents) {
        auto p = std::make_unique<ParentProxy>();
        p->name = pc.name;
        p->host = pc.host;
        p->port = pc.port;
        parents_.push_back(std::move(p));
    }
    direct_ = cfg.direct_hosts;
    only_ = cfg.parent_hosts;
    selection_ = cfg.parent_selection == "host-hash"           ? Selection::host_hash
                 : cfg.parent_selection == "least-connections" ? Selection::least_connections
                                                               : Selection::round_robin;
}

namespace {

// Exact names, or ".suffix" for the name and every name below it (whole labels).
bool listed(const std::vector<std::string>& list, const std::string& host) {
    for (const auto& d : list) {
        if (d.front() != '.') {
            if (host == d) return true;
        } else if (host == d.substr(1) ||
                   (host.size() > d.size() && host.compare(host.size() - d.size(), d.size(), d) == 0)) {
            return true;
        }
    }
    return false;
}

}  // namespace

bool Parents::goes_direct(const std::string& host) const {
    return listed(direct_, host) || (!only_.empty() && !listed(only_, host));
}

std::vector<ParentProxy*> Parents::candidates(const std::string& host) {
    const size_t n = parents_.size();
    // host-hash: a host always starts at the same parent (its cache stays warm), and moves to
    // the next one only while that one is down.
    const size_t start = selection_ == Selection::host_hash ? std::hash<std::string>()(host) % n
                                                             : static_cast<size_t>(next_.fetch_add(1) % n);
    std::vector<ParentProxy*> up, all;
    for (size_t i = 0; i < n; ++i) {
        ParentProxy* p = parents_[(start + i) % n].get();
        all.push_back(p);
        if (p->up.load()) up.push_back(p);
    }
    auto& out = up.empty() ? all : up;
    if (selection_ == Selection::least_connections)
        std::stable_sort(out.begin(), out.end(), [](ParentProxy* a, ParentProxy* b) { return a->open < b->open; });
    return out;
}

}  // namespace vigil::upstream

// Certificate cache: per-shard mutex, LRU list, and a map of in-flight mints (single-flight).
#include "tls/cert_cache.hpp"

#include <ctime>
#include <future>
#include <list>
#include <mutex>
#include <unordered_map>

namespace vigil::tls {

struct CertCache::Shard {
    struct Entry {
        std::string host;
        std::shared_ptr<const MintedCert> cert;
    };
    std::mutex mu;
    std::list<Entry> lru;  // front = most recently used
    std::unordered_map<std::string, std::list<Entry>::iterator> index;
    std::unordered_map<std::string, std::shared_future<std::shared_ptr<const MintedCert>>> inflight;
    size_t bytes = 0;
};

CertCache::CertCache(Minter minter, Limits limits) : minter_(std::move(minter)), limits_(limits) {
    if (limits_.shards == 0) limits_.shards = 1;
    for (size_t i = 0; i < limits_.shards; ++i) shards_.push_back(std::make_unique<Shard>());
}

CertCache::~CertCache() = default;

CertCache::Shard& CertCache::shard_for(const std::string& host) {
    return *shards_[std::hash<std::string>{}(host) % shards_.size()];
}

std::shared_ptr<const MintedCert> CertCache::get(const std::string& host) {
    Shard& s = shard_for(host);
    std::promise<std::shared_ptr<const MintedCert>> promise;
    {
        std::unique_lock lock(s.mu);
        auto it = s.index.find(host);
        if (it != s.index.end()) {
            const auto& cert = it->second->cert;
            if (cert->expires - limits_.renew_before_seconds > std::time(nullptr)) {
                s.lru.splice(s.lru.begin(), s.lru, it->second);
                ++hits_;
                return cert;
            }
            s.bytes -= cert->bytes;
            s.lru.erase(it->second);
            s.index.erase(it);
        }
        ++misses_;
        auto fl = s.inflight.find(host);
        if (fl != s.inflight.end()) {
            auto fut = fl->second;
            lock.unlock();
            ++waits_;
            return fut.get();  // a mint takes well under a millisecond; waiting is cheaper than minting twice
        }
        s.inflight.emplace(host, promise.get_future().share());
    }

    std::shared_ptr<const MintedCert> cert;
    try {
        cert = minter_(host);
        ++mints_;
    } catch (...) {
        std::lock_guard lock(s.mu);
        s.inflight.erase(host);
        promise.set_exception(std::current_exception());
        throw;
    }

    std::lock_guard lock(s.mu);
    s.inflight.erase(host);
    promise.set_value(cert);
    const size_t max_entries = std::max<size_t>(1, limits_.max_entries / shards_.size());
    const size_t max_bytes = std::max<size_t>(1, limits_.max_bytes / shards_.size());
    if (s.index.find(host) == s.index.end()) {
        s.lru.push_front({host, cert});
        s.index.emplace(host, s.lru.begin());
        s.bytes += cert->bytes;
    }
    while (s.lru.size() > 1 && (s.lru.size() > max_entries || s.bytes > max_bytes)) {
        auto& victim = s.lru.back();
        s.bytes -= victim.cert->bytes;
        s.index.erase(victim.host);
        s.lru.pop_back();
        ++evictions_;
    }
    return cert;
}

CertCache::Stats CertCache::stats() const {
    Stats st;
    st.hits = hits_;
    st.misses = misses_;
    st.mints = mints_;
    st.evictions = evictions_;
    st.waits = waits_;
    for (const auto& s : shards_) {
        std::lock_guard lock(s->mu);
        st.entries += s->lru.size();
        st.bytes += s->bytes;
    }
    return st;
}

}  // namespace vigil::tls

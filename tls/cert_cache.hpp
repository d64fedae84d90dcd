// A sharded, byte- and entry-bounded LRU of minted certificates that mints once per host under bursts.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tls/mint.hpp"

namespace vigil::tls {

class CertCache {
public:
    // The certificate store seam: the gateway passes LeafMinter::mint, tests a counting fake.
    using Minter = std::function<std::shared_ptr<const MintedCert>(const std::string& host)>;

    struct Limits {
        size_t max_entries = 20000;
        size_t max_bytes = 32u << 20;
        size_t shards = 16;
        long renew_before_seconds = 24 * 3600;  // re-mint a cached leaf this close to its expiry
    };

    struct Stats {
        uint64_t hits = 0, misses = 0, mints = 0, evictions = 0, waits = 0;
        size_t entries = 0, bytes = 0;
    };

    CertCache(Minter minter, Limits limits);
    ~CertCache();

    // The certificate for a normalised host, minted at most once however many callers ask
    // at the same time (later callers wait for the first). Throws what the minter throws.
    std::shared_ptr<const MintedCert> get(const std::string& host);

    Stats stats() const;

private:
    struct Shard;
    Shard& shard_for(const std::string& host);

    Minter minter_;
    Limits limits_;
    std::vector<std::unique_ptr<Shard>> shards_;
    std::atomic<uint64_t> hits_{0}, misses_{0}, mints_{0}, evictions_{0}, waits_{0};
};

}  // namespace vigil::tls

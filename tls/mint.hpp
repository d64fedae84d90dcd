// Minting leaf certificates for intercepted hosts, signed by the issuing CA with the gateway's own leaf key.
#pragma once

#include <ctime>
#include <memory>
#include <string>
#include <string_view>

#include "tls/ca.hpp"

namespace vigil::tls {

struct MintedCert {
    X509Ptr leaf;
    std::time_t expires = 0;  // the leaf's notAfter
    size_t bytes = 0;         // DER size, what the cache accounts
};

// Normalises a host for certificates and cache keys: lower case, no trailing dot,
// IPv6 brackets removed. Returns "" when the name is neither a DNS name nor an IP literal.
std::string normalize_host(std::string_view host);

// The canonical text of an IPv4 or IPv6 literal ("::1", "192.0.2.1"), or "" when it is not one.
std::string canonical_ip(std::string_view text);

class LeafMinter {
public:
    // Generates the ECDSA P-256 leaf key used for every minted certificate (never the CA key).
    explicit LeafMinter(std::shared_ptr<const CaMaterial> ca);

    // Mints a certificate for one normalised host (DNS name or IP literal). Thread-safe.
    std::shared_ptr<const MintedCert> mint(const std::string& host) const;

    EVP_PKEY* leaf_key() const { return leaf_key_.get(); }
    const CaMaterial& ca() const { return *ca_; }

    static constexpr long kBackdateSeconds = 3600;
    static constexpr long kMaxLifetimeSeconds = 47L * 24 * 3600;

private:
    std::shared_ptr<const CaMaterial> ca_;
    PKeyPtr leaf_key_;
};

}  // namespace vigil::tls

// Everything minting needs, loaded from the CA directory: swapped whole when the issuing CA is
// rotated (SIGHUP); a session keeps the material it started with until it ends.
#pragma once

#include <memory>
#include <string>

#include "tls/ca.hpp"
#include "tls/cert_cache.hpp"
#include "tls/mint.hpp"
#include "tls/openssl_ptr.hpp"

namespace vigil::tls {

struct Material {
    std::shared_ptr<const CaMaterial> ca;
    std::unique_ptr<LeafMinter> minter;
    std::unique_ptr<CertCache> certs;
    X509StackPtr chain;  // sent after each minted leaf
    std::string issuer_fingerprint;
};

}  // namespace vigil::tls

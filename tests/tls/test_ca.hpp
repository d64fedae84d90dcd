// Test helper: an in-memory root + issuing CA, as vigil-ca init makes on disk.
#pragma once

#include <memory>

#include "tls/ca.hpp"

namespace vigil::tls::testing {

inline std::shared_ptr<CaMaterial> make_test_ca(KeyType type = KeyType::ec_p256) {
    auto ca = std::make_shared<CaMaterial>();
    PKeyPtr root_key = generate_key(type);
    ca->root = make_root_cert(root_key.get(), "Test", "Test Root", 3650);
    ca->issuer_key = generate_key(type);
    ca->issuer = make_issuing_cert(ca->issuer_key.get(), ca->root.get(), root_key.get(), "Test", "Test Issuing", 365);
    ca->chain.push_back(x509_ref(ca->issuer.get()));
    return ca;
}

}  // namespace vigil::tls::testing

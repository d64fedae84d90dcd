// The deployment kit: the root certificate in every format, per-platform install files and
// exact steps, and the fingerprints to check. Certificates only — never a key.
#pragma once

#include <filesystem>

#include "ca-tools/kit_proxy.hpp"
#include "tls/ca.hpp"

namespace vigil::catools {

// Writes the kit into `out` (which must not exist); everything is written to a temporary
// folder first and renamed at the end, so a failure leaves nothing half-made.
// With `proxy` set, the kit also carries the proxy settings for each platform (kit_proxy.hpp).
void write_kit(X509* root, const std::filesystem::path& out, const ProxySettings& proxy = {});

}  // namespace vigil::catools

// A configuration profile (.mobileconfig) for macOS and iOS that installs a root certificate.
#pragma once

#include <string>

#include "tls/openssl_ptr.hpp"

namespace vigil::tls {

// A plist with one com.apple.security.root payload; UUIDs are derived from the certificate,
// so the same root always gives the same profile.
std::string mobileconfig(X509* root);
std::string common_name(X509* cert, const std::string& fallback);

}  // namespace vigil::tls

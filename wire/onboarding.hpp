// The onboarding page (like mitmproxy's mitm.it): http://<onboarding host>/ through the proxy
// shows the root's fingerprint, downloads and short steps. It serves certificates only.
#pragma once

#include <optional>
#include <string>

#include "tls/openssl_ptr.hpp"

namespace vigil::wire {

struct OnboardingResponse {
    int status = 200;
    std::string content_type;
    std::string body;
    std::string filename;  // for downloads (Content-Disposition)
};

// The response for `path` ("/", "/vigil-root.pem", "/vigil-root.cer", "/vigil-root.mobileconfig").
OnboardingResponse onboarding_response(X509* root, const std::string& path);

}  // namespace vigil::wire

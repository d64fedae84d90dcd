// The onboarding page (like mitmproxy's mitm.it): http://<onboarding host>/ through the proxy
// shows the root's fingerprint, downloads and short steps. It serves certificates only.
#pragma once

#include <optional>
#include <string>

#include "config/config.hpp"
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
// The same, and the PAC file as /proxy.pac and /wpad.dat: `host` is the request's Host (the
// name clients reached Vigil by), `proxy_port` the proxy listener's port.
OnboardingResponse onboarding_response(X509* root, const std::string& path, const config::Config& cfg,
                                       std::string_view host, uint16_t proxy_port);

}  // namespace vigil::wire

// SPNEGO/Kerberos proxy authentication (RFC 4559) on MIT GSS-API: the client's token
// (Proxy-Authorization: Negotiate <base64>) is accepted with the service key from a keytab; the
// library checks the ticket, its time and its replay cache. One round trip: a mechanism that
// needs more (NTLM offered inside SPNEGO) is refused.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include "identity/options.hpp"

namespace vigil::identity {

class IdentityError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct KerberosResult {
    std::string principal;  // "alice@EXAMPLE.TEST" when accepted
    std::string error;      // else the library's words, e.g. "Clock skew too great"
};

class KerberosAcceptor {
public:
    // Acquires the acceptor credential: a keytab that is missing, unreadable, or without the
    // principal's key throws IdentityError naming the keytab and what GSS-API said.
    explicit KerberosAcceptor(const KerberosOptions& opts);
    ~KerberosAcceptor();
    KerberosAcceptor(const KerberosAcceptor&) = delete;
    KerberosAcceptor& operator=(const KerberosAcceptor&) = delete;

    // One client token (decoded bytes). Blocking (keytab, replay cache): run off the workers.
    KerberosResult accept(std::string_view token) const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// "alice@EXAMPLE.TEST" -> "alice"; a name without a realm stays as it is.
std::string short_name(const std::string& principal);

}  // namespace vigil::identity

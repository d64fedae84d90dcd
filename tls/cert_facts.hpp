// A refused origin certificate, described for the person who sees the page: who is at fault,
// the names it is for (at most six, then how many more), its validity dates.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <openssl/x509.h>

namespace vigil::tls {

// (label, value) rows; `cert` may be null (then only who is at fault).
std::vector<std::pair<std::string, std::string>> certificate_facts(X509* cert);

}  // namespace vigil::tls

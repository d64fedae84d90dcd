// The GSS-API calls: acquire the acceptor credential once, then one security context per
// client token, released at once (a proxy's Negotiate is one leg; nothing is kept per client).
#include "identity/kerberos.hpp"

#include <gssapi/gssapi.h>
#include <gssapi/gssapi_ext.h>
#include <gssapi/gssapi_krb5.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vigil::identity {
namespace {

// Every message GSS-API has for (major, minor): the mechanism's words are the useful ones.
std::string gss_words(OM_uint32 major, OM_uint32 minor) {
    std::string out;
    auto collect = [&](OM_uint32 code, int type) {
        OM_uint32 ctx = 0, min = 0;
        do {
            gss_buffer_desc msg{};
            if (gss_display_status(&min, code, type, GSS_C_NO_OID, &ctx, &msg) != GSS_S_COMPLETE) break;
            std::string text(static_cast<const char*>(msg.value), msg.length);
            gss_release_buffer(&min, &msg);
            if (!text.empty() && out.find(text) == std::string::npos) out += (out.empty() ? "" : ": ") + text;
        } while (ctx != 0);
    };
    if (minor) collect(minor, GSS_C_MECH_CODE);
    if (out.empty() || GSS_ROUTINE_ERROR(major) != GSS_S_FAILURE) collect(major, GSS_C_GSS_CODE);
    return out.empty() ? "unknown GSS-API error" : out;
}

}  // namespace

struct KerberosAcceptor::Impl {
    gss_cred_id_t cred = GSS_C_NO_CREDENTIAL;
};

KerberosAcceptor::KerberosAcceptor(const KerberosOptions& opts) : impl_(std::make_unique<Impl>()) {
    if (::access(opts.keytab.c_str(), R_OK) != 0)
        throw IdentityError("auth.kerberos_keytab " + opts.keytab + ": " + std::strerror(errno));
    struct stat st {};
    if (::stat(opts.keytab.c_str(), &st) == 0 && (st.st_mode & 0077))
        throw IdentityError("auth.kerberos_keytab " + opts.keytab +
                            ": readable by group or others; it holds the service's key (chmod 600)");
    OM_uint32 minor = 0;
    gss_name_t name = GSS_C_NO_NAME;
    if (!opts.principal.empty()) {
        gss_buffer_desc buf{opts.principal.size(), const_cast<char*>(opts.principal.data())};
        OM_uint32 major = gss_import_name(&minor, &buf, GSS_KRB5_NT_PRINCIPAL_NAME, &name);
        if (GSS_ERROR(major))
            throw IdentityError("auth.kerberos_principal " + opts.principal + ": " + gss_words(major, minor));
    }
    gss_key_value_element_desc element{"keytab", opts.keytab.c_str()};
    gss_key_value_set_desc store{1, &element};
    OM_uint32 major = gss_acquire_cred_from(&minor, name, GSS_C_INDEFINITE, GSS_C_NO_OID_SET, GSS_C_ACCEPT, &store,
                                            &impl_->cred, nullptr, nullptr);
    if (name != GSS_C_NO_NAME) gss_release_name(&minor, &name);
    if (GSS_ERROR(major))
        throw IdentityError("auth.kerberos_keytab " + opts.keytab + ": " + gss_words(major, minor) +
                            (opts.principal.empty() ? "" : " (for " + opts.principal + ")"));
}

KerberosAcceptor::~KerberosAcceptor() {
    OM_uint32 minor = 0;
    if (impl_->cred != GSS_C_NO_CREDENTIAL) gss_release_cred(&minor, &impl_->cred);
}

KerberosResult KerberosAcceptor::accept(std::string_view token) const {
    KerberosResult result;
    OM_uint32 minor = 0, flags = 0;
    gss_ctx_id_t ctx = GSS_C_NO_CONTEXT;
    gss_buffer_desc in{token.size(), const_cast<char*>(token.data())}, out{};
    gss_name_t source = GSS_C_NO_NAME;
    OM_uint32 major = gss_accept_sec_context(&minor, &ctx, impl_->cred, &in, GSS_C_NO_CHANNEL_BINDINGS, &source, nullptr,
                                             &out, &flags, nullptr, nullptr);
    OM_uint32 ignored = 0;
    gss_release_buffer(&ignored, &out);
    if (major == GSS_S_CONTINUE_NEEDED) {
        result.error = "the client offered a mechanism that needs another round trip (NTLM?); only Kerberos is accepted";
    } else if (GSS_ERROR(major)) {
        result.error = gss_words(major, minor);
    } else {
        gss_buffer_desc name{};
        if (GSS_ERROR(gss_display_name(&minor, source, &name, nullptr))) {
            result.error = "the client's principal name could not be read";
        } else {
            result.principal.assign(static_cast<const char*>(name.value), name.length);
            gss_release_buffer(&ignored, &name);
        }
    }
    if (source != GSS_C_NO_NAME) gss_release_name(&ignored, &source);
    if (ctx != GSS_C_NO_CONTEXT) gss_delete_sec_context(&ignored, &ctx, GSS_C_NO_BUFFER);
    return result;
}

std::string short_name(const std::string& principal) {
    const auto at = principal.rfind('@');
    return at == std::string::npos ? principal : principal.substr(0, at);
}

}  // namespace vigil::identity

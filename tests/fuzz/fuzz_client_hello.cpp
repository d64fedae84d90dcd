// Fuzz target: the first flight of a client after CONNECT, into the client-facing SSL_CTX the
// gateway uses — its SNI guard and ALPN callbacks included — through memory BIOs.
#include <openssl/ssl.h>

#include "tls/ca.hpp"
#include "tls/contexts.hpp"
#include "tls/mint.hpp"

namespace {

struct Setup {
    vigil::tls::SslCtxPtr ctx = vigil::tls::make_client_facing_ctx();
    std::shared_ptr<const vigil::tls::MintedCert> leaf;
    std::unique_ptr<vigil::tls::LeafMinter> minter;
    Setup() {
        auto ca = std::make_shared<vigil::tls::CaMaterial>();
        ca->issuer_key = vigil::tls::generate_key(vigil::tls::KeyType::ec_p256);
        ca->issuer = vigil::tls::make_root_cert(ca->issuer_key.get(), "Fuzz", "Fuzz Root", 30);
        ca->root.reset(X509_dup(ca->issuer.get()));
        minter = std::make_unique<vigil::tls::LeafMinter>(ca);
        leaf = minter->mint("example.com");
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static Setup setup;
    SSL* ssl = SSL_new(setup.ctx.get());
    SSL_use_certificate(ssl, setup.leaf->leaf.get());
    SSL_use_PrivateKey(ssl, setup.minter->leaf_key());
    vigil::tls::expect_sni(ssl, "example.com");
    BIO* in = BIO_new_mem_buf(data, static_cast<int>(size));
    BIO* out = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(in, -1);  // "no more data yet", like a socket that would block
    SSL_set_bio(ssl, in, out);
    SSL_set_accept_state(ssl);
    (void)SSL_do_handshake(ssl);
    (void)vigil::tls::sni_was_refused(ssl);
    SSL_free(ssl);
    return 0;
}

// Ed25519 with OpenSSL's one-shot EVP_DigestSign/Verify; the payload is signed as the bytes it
// is carried as, so nothing is re-serialised before verification.
#include "rules/bundle.hpp"

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <memory>
#include <nlohmann/json.hpp>

#include "core/encoding.hpp"
#include "rules/db_internal.hpp"

namespace vigil::rules {
namespace {

using PKey = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;

PKey read_private(const std::string& pem) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), int(pem.size())), BIO_free);
    PKey key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
    if (!key || EVP_PKEY_id(key.get()) != EVP_PKEY_ED25519) throw RulesError("the signing key is not an Ed25519 private key (PEM)");
    return key;
}

std::string raw_public(EVP_PKEY* key) {
    unsigned char raw[32];
    size_t n = sizeof raw;
    if (EVP_PKEY_get_raw_public_key(key, raw, &n) != 1 || n != 32) throw RulesError("cannot read the Ed25519 public key");
    return std::string(reinterpret_cast<char*>(raw), n);
}

std::string key_id(const std::string& raw) { return core::sha256_hex(raw).substr(0, 16); }


}  // namespace

std::pair<std::string, std::string> make_signing_key() {
    std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr),
                                                                      EVP_PKEY_CTX_free);
    EVP_PKEY* raw = nullptr;
    if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 || EVP_PKEY_keygen(ctx.get(), &raw) != 1)
        throw RulesError("cannot make an Ed25519 key");
    PKey key(raw, EVP_PKEY_free);
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
    char* data = nullptr;
    long n = BIO_get_mem_data(bio.get(), &data);
    return {std::string(data, size_t(n)), core::base64(raw_public(key.get()))};
}

std::string public_key_of(const std::string& private_pem) { return core::base64(raw_public(read_private(private_pem).get())); }

std::string make_bundle(const RuleData& rules, int64_t version, const std::string& private_pem) {
    PKey key = read_private(private_pem);
    nlohmann::json payload = {{"format", "vigil-ruleset-bundle/1"},
                              {"version", version},
                              {"published", db_internal::now_iso()},
                              {"key_id", key_id(raw_public(key.get()))},
                              {"rules", nlohmann::json::parse(to_json(rules))}};
    const std::string bytes = payload.dump();
    MdCtx md(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    unsigned char sig[64];
    size_t sig_len = sizeof sig;
    if (!md || EVP_DigestSignInit(md.get(), nullptr, nullptr, nullptr, key.get()) != 1 ||
        EVP_DigestSign(md.get(), sig, &sig_len, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()) != 1)
        throw RulesError("signing the bundle failed");
    nlohmann::json bundle = {{"payload", core::base64(bytes)},
                             {"signature", core::base64(std::string(reinterpret_cast<char*>(sig), sig_len))}};
    return bundle.dump(1) + "\n";
}

Bundle open_bundle(std::string_view bytes, const std::string& public_key_b64) {
    auto raw_key = core::base64_decode(public_key_b64);
    if (!raw_key || raw_key->size() != 32) throw RulesError("rules.source_key is not the base64 of a 32-byte Ed25519 key");
    nlohmann::json outer;
    try {
        outer = nlohmann::json::parse(bytes);
    } catch (const std::exception&) {
        throw RulesError("not a ruleset bundle (not JSON)");
    }
    if (!outer.is_object() || !outer.contains("payload") || !outer.contains("signature") || !outer["payload"].is_string() ||
        !outer["signature"].is_string())
        throw RulesError("not a ruleset bundle (no payload and signature)");
    auto payload = core::base64_decode(outer["payload"].get<std::string>());
    auto sig = core::base64_decode(outer["signature"].get<std::string>());
    if (!payload || !sig || sig->size() != 64) throw RulesError("malformed ruleset bundle (payload or signature)");
    PKey key(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(raw_key->data()),
                                         raw_key->size()),
             EVP_PKEY_free);
    MdCtx md(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    if (!key || !md || EVP_DigestVerifyInit(md.get(), nullptr, nullptr, nullptr, key.get()) != 1 ||
        EVP_DigestVerify(md.get(), reinterpret_cast<const unsigned char*>(sig->data()), sig->size(),
                         reinterpret_cast<const unsigned char*>(payload->data()), payload->size()) != 1)
        throw RulesError("the bundle's signature does not verify with rules.source_key (key " +
                         key_id(*raw_key) + "): not applied");
    Bundle b;
    try {
        auto p = nlohmann::json::parse(*payload);
        if (p.value("format", "") != "vigil-ruleset-bundle/1") throw RulesError("unknown bundle format");
        b.version = p.at("version").get<int64_t>();
        b.published = p.value("published", "");
        b.key_id = p.value("key_id", "");
        b.rules = from_json(p.at("rules").dump());
    } catch (const RulesError&) {
        throw;
    } catch (const std::exception& e) {
        throw RulesError(std::string("malformed bundle payload: ") + e.what());
    }
    if (b.version <= 0) throw RulesError("malformed bundle payload: no version");
    return b;
}

}  // namespace vigil::rules

// First-contact minting: the time to mint a leaf for a name never seen before (what a client's
// first connection to a new site waits for), p50/p99/p99.9 over 20,000 distinct names, with an
// ECDSA P-256 and an RSA-2048 issuing CA. Not a test; run by `make bench-compare`.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "tests/tls/test_ca.hpp"
#include "tls/mint.hpp"

namespace {

double percentile(std::vector<double>& v, double p) {
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<size_t>(p / 100.0 * static_cast<double>(v.size())))];
}

void run(const char* what, vigil::tls::KeyType type) {
    auto ca = vigil::tls::testing::make_test_ca(type);
    vigil::tls::LeafMinter minter(ca);
    constexpr int kNames = 20000;
    std::vector<double> us;
    us.reserve(kNames);
    for (int i = 0; i < kNames; ++i) {
        const std::string host = "h" + std::to_string(i) + ".first-contact.example";
        const auto t0 = std::chrono::steady_clock::now();
        auto cert = minter.mint(host);
        us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
        if (!cert) std::fprintf(stderr, "mint failed for %s\n", host.c_str());
    }
    std::printf("mint, %s issuing CA, %d new names: p50 %.0f us, p99 %.0f us, p99.9 %.0f us\n", what, kNames,
                percentile(us, 50), percentile(us, 99), percentile(us, 99.9));
}

}  // namespace

int main() {
    run("ECDSA P-256", vigil::tls::KeyType::ec_p256);
    run("RSA-2048", vigil::tls::KeyType::rsa_2048);
    return 0;
}

// vigil-ca: the interception CA's lifecycle for the PKI admin (init, show).
#include <sys/stat.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "tls/ca.hpp"

namespace fs = std::filesystem;
using namespace vigil::tls;

namespace {

constexpr const char* kUsage = R"(usage: vigil-ca COMMAND [options]

Creates and inspects the CA that Vigil mints interception certificates from.

commands:
  init --dir DIR [--org NAME] [--cn NAME] [--days N] [--issuing-days N] [--key TYPE] [--force]
        Create root.pem/root.key and an issuing CA (issuing.pem/issuing.key) signed by it.
        Keys are written 0600, DIR 0700. TYPE: ec-p256 (default), ec-p384, rsa-3072, rsa-4096.
        --days is the root's validity (default 3650), --issuing-days the issuing CA's (default 730).
        Refuses to overwrite an existing CA unless --force is given.
  show --dir DIR
        Subjects, key types, validity, days left and SHA-256 fingerprints.

Deploy root.pem to clients; keep root.key offline once the issuing CA exists.
)";

struct Args {
    std::string command;
    std::map<std::string, std::string> opts;
    bool has(const std::string& k) const { return opts.count(k) > 0; }
    std::string get(const std::string& k, const std::string& def = "") const {
        auto it = opts.find(k);
        return it == opts.end() ? def : it->second;
    }
};

[[noreturn]] void usage_error(const std::string& msg) {
    std::cerr << "vigil-ca: " << msg << " (see vigil-ca --help)\n";
    std::exit(2);
}

int parse_days(const Args& a, const std::string& key, int def) {
    std::string v = a.get(key);
    if (v.empty()) return def;
    try {
        size_t used = 0;
        int d = std::stoi(v, &used);
        if (used != v.size() || d < 1 || d > 36500) throw std::invalid_argument(v);
        return d;
    } catch (const std::exception&) {
        usage_error(key + " expects a number of days from 1 to 36500");
    }
}

std::string date_text(std::time_t t) {
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
    return buf;
}

int cmd_init(const Args& a) {
    fs::path dir = a.get("--dir");
    if (dir.empty()) usage_error("init needs --dir DIR");
    auto type = parse_key_type(a.get("--key", "ec-p256"));
    if (!type) usage_error("--key must be one of ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096");
    int root_days = parse_days(a, "--days", 3650);
    int issuing_days = parse_days(a, "--issuing-days", 730);
    std::string org = a.get("--org", "Vigil");
    std::string cn = a.get("--cn", org + " Root CA");
    for (const char* f : {"root.pem", "root.key", "issuing.pem", "issuing.key"}) {
        if (fs::exists(dir / f) && !a.has("--force"))
            throw TlsError((dir / f).string() + " already exists; use --force to replace the CA");
    }
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw TlsError(dir.string() + ": cannot create directory: " + ec.message());
    ::chmod(dir.c_str(), 0700);

    PKeyPtr root_key = generate_key(*type);
    X509Ptr root = make_root_cert(root_key.get(), org, cn, root_days);
    PKeyPtr issuing_key = generate_key(*type);
    X509Ptr issuing =
        make_issuing_cert(issuing_key.get(), root.get(), root_key.get(), org, org + " Issuing CA", issuing_days);
    // Keys first: a CA directory with certificates but no keys would look usable and not be.
    write_file_atomic(dir / "root.key", key_to_pem(root_key.get()), 0600);
    write_file_atomic(dir / "issuing.key", key_to_pem(issuing_key.get()), 0600);
    write_file_atomic(dir / "issuing.pem", cert_to_pem(issuing.get()), 0644);
    write_file_atomic(dir / "root.pem", cert_to_pem(root.get()), 0644);
    std::cout << "Created CA in " << dir.string() << "\n"
              << "  root:    " << subject_text(root.get()) << "\n"
              << "  issuing: " << subject_text(issuing.get()) << "\n"
              << "  root SHA-256 fingerprint: " << fingerprint(root.get(), EVP_sha256()) << "\n"
              << "Deploy " << (dir / "root.pem").string() << " to clients. Move root.key offline once you no "
              << "longer need to re-issue the issuing CA.\n";
    return 0;
}

void show_cert(const char* label, X509* cert, EVP_PKEY* key_hint) {
    std::time_t now = std::time(nullptr);
    long days_left = static_cast<long>((not_after(cert) - now) / 86400);
    EVP_PKEY* pub = X509_get0_pubkey(cert);
    std::cout << label << "\n"
              << "  subject:     " << subject_text(cert) << "\n"
              << "  issuer:      " << issuer_text(cert) << "\n"
              << "  key:         " << describe_key(pub ? pub : key_hint) << "\n"
              << "  valid from:  " << date_text(not_before(cert)) << "\n"
              << "  valid until: " << date_text(not_after(cert)) << " (" << days_left << " days left)"
              << (days_left < 0 ? "  EXPIRED" : days_left < 30 ? "  EXPIRES SOON" : "") << "\n"
              << "  SHA-256:     " << fingerprint(cert, EVP_sha256()) << "\n";
}

int cmd_show(const Args& a) {
    fs::path dir = a.get("--dir");
    if (dir.empty()) usage_error("show needs --dir DIR");
    if (!fs::exists(dir / "root.pem")) throw TlsError((dir / "root.pem").string() + ": not found");
    X509Ptr root = read_cert_file(dir / "root.pem");
    show_cert("root CA", root.get(), nullptr);
    if (fs::exists(dir / "issuing.pem")) {
        X509Ptr issuing = read_cert_file(dir / "issuing.pem");
        show_cert("issuing CA", issuing.get(), nullptr);
        EVP_PKEY* root_pub = X509_get0_pubkey(root.get());
        bool signed_by_root = root_pub && X509_verify(issuing.get(), root_pub) == 1;
        std::cout << "  signed by root: " << (signed_by_root ? "yes" : "NO") << "\n";
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) usage_error("missing command");
    std::string first = argv[1];
    if (first == "--help" || first == "-h" || first == "help") {
        std::cout << kUsage;
        return 0;
    }
    if (first == "--version") {
        std::cout << "vigil-ca 0.1.0\n";
        return 0;
    }
    Args a;
    a.command = first;
    for (int i = 2; i < argc; ++i) {
        std::string k = argv[i];
        if (k == "--help") {
            std::cout << kUsage;
            return 0;
        }
        if (k == "--force") {
            a.opts[k] = "1";
            continue;
        }
        if (k.rfind("--", 0) != 0 || i + 1 >= argc) usage_error("unexpected argument " + k);
        a.opts[k] = argv[++i];
    }
    static const std::map<std::string, std::vector<std::string>> allowed = {
        {"init", {"--dir", "--org", "--cn", "--days", "--issuing-days", "--key", "--force"}},
        {"show", {"--dir"}},
    };
    auto it = allowed.find(a.command);
    if (it == allowed.end()) usage_error("unknown command " + a.command);
    for (const auto& [k, v] : a.opts) {
        if (std::find(it->second.begin(), it->second.end(), k) == it->second.end())
            usage_error(a.command + " does not take " + k);
    }
    try {
        return a.command == "init" ? cmd_init(a) : cmd_show(a);
    } catch (const std::exception& e) {
        std::cerr << "vigil-ca: " << e.what() << "\n";
        return 1;
    }
}

// vigil-ca: the interception CA's lifecycle for the PKI admin.
#include <sys/stat.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <cstdlib>
#include <unistd.h>
#include <charconv>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "ca-tools/kit.hpp"
#include "core/cli.hpp"
#include "tls/ca.hpp"

namespace fs = std::filesystem;
using namespace vigil::tls;

namespace {

using Args = vigil::core::cli::Args;

[[noreturn]] void usage_error(const std::string& msg) {
    std::cerr << "vigil-ca: " << msg << " (see vigil-ca --help)\n";  // after parsing: values that do not fit
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

KeyType key_type(const Args& a) {
    auto t = parse_key_type(a.get("--key", "ec-p256"));
    if (!t) usage_error("--key must be one of ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096");
    return *t;
}

// --root-key-passphrase-file SOURCE: a file path, `-` (the first line of standard input),
// `env:NAME` (an environment variable) or `fd:N` (the first line read from an open file
// descriptor, e.g. a pipe from a secrets manager). The passphrase never appears in argv.
std::string read_passphrase(const Args& a) {
    if (!a.has("--root-key-passphrase-file")) return "";
    const std::string src = a.get("--root-key-passphrase-file");
    std::string line;
    auto first_line = [&](std::istream& in) {
        std::getline(in, line);
        return static_cast<bool>(in) || !line.empty();
    };
    if (src == "-") {
        if (!first_line(std::cin)) throw TlsError("--root-key-passphrase-file -: nothing on standard input");
    } else if (src.rfind("env:", 0) == 0) {
        const char* v = std::getenv(src.substr(4).c_str());
        if (!v) throw TlsError(src + ": the environment variable " + src.substr(4) + " is not set");
        line = v;
    } else if (src.rfind("fd:", 0) == 0) {
        int fd = -1;
        auto [p, err] = std::from_chars(src.data() + 3, src.data() + src.size(), fd);
        if (err != std::errc() || p != src.data() + src.size() || fd < 0)
            throw TlsError(src + ": expected fd:N with N an open file descriptor");
        std::string bytes;
        char c;
        ssize_t n;
        while ((n = ::read(fd, &c, 1)) == 1 && c != '\n') bytes.push_back(c);
        if (n < 0) throw TlsError(src + ": cannot read file descriptor " + std::to_string(fd));
        line = bytes;
    } else {
        std::ifstream in(src);
        if (!in) throw TlsError(src + ": cannot read the passphrase file");
        first_line(in);
    }
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty()) throw TlsError(src + ": empty passphrase");
    return line;
}

fs::path need_dir(const Args& a) {
    fs::path dir = a.get("--dir");
    if (dir.empty()) usage_error(a.positional[0] + " needs --dir DIR");
    return dir;
}

std::string date_text(std::time_t t) {
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
    return buf;
}

PKeyPtr load_root_key(const fs::path& dir, const std::string& passphrase) {
    fs::path p = dir / "root.key";
    if (!fs::exists(p)) throw TlsError(p.string() + ": the root key is not here (kept offline?); bring it back to rotate");
    check_key_permissions(p);
    std::ifstream in(p);
    std::string head;
    std::getline(in, head);
    bool encrypted = head.find("ENCRYPTED") != std::string::npos;
    if (encrypted && passphrase.empty())
        throw TlsError(p.string() + " is encrypted; give --root-key-passphrase-file");
    return encrypted ? read_key_file(p, passphrase) : read_key_file(p);
}

int cmd_init(const Args& a) {
    fs::path dir = need_dir(a);
    KeyType type = key_type(a);
    int root_days = parse_days(a, a.has("--root-days") ? "--root-days" : "--days", 3650);
    int issuing_days = parse_days(a, "--issuing-days", 730);
    std::string org = a.get("--org", "Vigil");
    std::string cn = a.get("--cn", org + " Root CA");
    std::string passphrase = read_passphrase(a);
    if (a.has("--no-issuing") && !passphrase.empty())
        usage_error("--no-issuing makes the gateway sign with the root key, which cannot then be encrypted");
    for (const char* f : {"root.pem", "root.key", "issuing.pem", "issuing.key"}) {
        if (fs::exists(dir / f) && !a.has("--force"))
            throw TlsError((dir / f).string() + " already exists; use --force to replace the CA");
    }
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw TlsError(dir.string() + ": cannot create directory: " + ec.message());
    ::chmod(dir.c_str(), 0700);

    PKeyPtr root_key = generate_key(type);
    X509Ptr root = make_root_cert(root_key.get(), org, cn, root_days);
    // Keys first: a CA directory with certificates but no keys would look usable and not be.
    write_file_atomic(dir / "root.key",
                      passphrase.empty() ? key_to_pem(root_key.get()) : key_to_encrypted_pem(root_key.get(), passphrase),
                      0600);
    if (a.has("--no-issuing")) {
        fs::remove(dir / "issuing.pem");
        fs::remove(dir / "issuing.key");
    } else {
        PKeyPtr issuing_key = generate_key(type);
        X509Ptr issuing = make_issuing_cert(issuing_key.get(), root.get(), root_key.get(), org, org + " Issuing CA",
                                            issuing_days);
        write_file_atomic(dir / "issuing.key", key_to_pem(issuing_key.get()), 0600);
        write_file_atomic(dir / "issuing.pem", cert_to_pem(issuing.get()), 0644);
    }
    write_file_atomic(dir / "root.pem", cert_to_pem(root.get()), 0644);
    std::cout << "Created CA in " << dir.string() << "\n"
              << "  root:    " << subject_text(root.get()) << " (" << describe_key(root_key.get()) << ")\n"
              << "  root SHA-256 fingerprint: " << fingerprint(root.get(), EVP_sha256()) << "\n"
              << "Deploy " << (dir / "root.pem").string() << " to clients (vigil-ca kit makes the files).\n";
    if (!a.has("--no-issuing"))
        std::cout << "Move root.key offline once you no longer need to rotate the issuing CA.\n";
    return 0;
}

int cmd_csr(const Args& a) {
    fs::path dir = need_dir(a);
    if (!a.has("--out")) usage_error("csr needs --out FILE");
    fs::create_directories(dir);
    ::chmod(dir.c_str(), 0700);
    std::string org = a.get("--org", "Vigil");
    PKeyPtr key = generate_key(key_type(a));
    X509ReqPtr req = make_issuing_csr(key.get(), org, a.get("--cn", org + " Issuing CA"));
    write_file_atomic(dir / "issuing-pending.key", key_to_pem(key.get()), 0600);
    write_file_atomic(a.get("--out"), csr_to_pem(req.get()), 0644);
    std::cout << "Wrote the CSR to " << a.get("--out") << " and the pending key to "
              << (dir / "issuing-pending.key").string() << ".\n"
              << "Have your PKI sign it as a subordinate CA, then: vigil-ca install-issuing --dir " << dir.string()
              << " --cert SIGNED.pem --chain CHAIN.pem\n";
    return 0;
}

int cmd_install_issuing(const Args& a) {
    fs::path dir = need_dir(a);
    if (!a.has("--cert")) usage_error("install-issuing needs --cert FILE");
    X509Ptr cert = read_cert_file(a.get("--cert"));
    std::vector<X509Ptr> chain;
    if (a.has("--chain")) chain = read_certs_file(a.get("--chain"));
    fs::path pending = dir / "issuing-pending.key";
    fs::path key_path = fs::exists(pending) ? pending : dir / "issuing.key";
    if (!fs::exists(key_path)) throw TlsError("no pending key in " + dir.string() + "; run vigil-ca csr first");
    PKeyPtr key = read_key_file(key_path);
    if (X509_check_private_key(cert.get(), key.get()) != 1)
        throw TlsError(a.get("--cert") + ": the certificate does not match the key " + key_path.string());
    if (!is_ca(cert.get())) throw TlsError(a.get("--cert") + ": not a CA certificate (basicConstraints CA:TRUE missing)");
    std::time_t now = std::time(nullptr);
    if (not_after(cert.get()) <= now || not_before(cert.get()) > now)
        throw TlsError(a.get("--cert") + ": the certificate is not valid now");
    // The root: the chain's self-signed end when --chain is given (it must have one), else the
    // root.pem already here.
    X509Ptr root;
    std::vector<X509*> intermediates;
    for (auto& c : chain) {
        if (X509_check_issued(c.get(), c.get()) == X509_V_OK) root = x509_ref(c.get());
        else intermediates.push_back(c.get());
    }
    if (a.has("--chain") && !root)
        throw TlsError(a.get("--chain") + ": the chain does not end in a self-signed root certificate; give the "
                       "intermediates and the root your clients trust");
    if (!root && fs::exists(dir / "root.pem")) root = read_cert_file(dir / "root.pem");
    if (!root) throw TlsError("no root: give --chain with the root certificate, or put root.pem in " + dir.string());
    std::string err = verify_chain(cert.get(), intermediates, {root.get()});
    if (!err.empty()) throw TlsError(a.get("--cert") + ": does not chain to the root: " + err);
    std::string pem = cert_to_pem(cert.get());
    for (X509* i : intermediates) pem += cert_to_pem(i);
    // root.pem becomes the chain's root: it is what clients must trust and what `kit` deploys.
    // A root of this folder's own (vigil-ca init) that is replaced keeps its files aside.
    std::string replaced;
    if (fs::exists(dir / "root.pem")) {
        X509Ptr old_root = read_cert_file(dir / "root.pem");
        if (X509_cmp(old_root.get(), root.get()) != 0) {
            const std::string stamp = std::to_string(std::time(nullptr));
            fs::rename(dir / "root.pem", dir / ("root.pem.replaced-" + stamp));
            if (fs::exists(dir / "root.key")) fs::rename(dir / "root.key", dir / ("root.key.replaced-" + stamp));
            replaced = " The previous root " + subject_text(old_root.get()) + " was moved aside (root.pem.replaced-" +
                       stamp + "): deploy the new root to clients (vigil-ca kit).";
        }
    }
    write_file_atomic(dir / "issuing.pem", pem, 0644);
    if (key_path == pending) fs::rename(pending, dir / "issuing.key");
    if (!fs::exists(dir / "root.pem")) write_file_atomic(dir / "root.pem", cert_to_pem(root.get()), 0644);
    std::cout << "Installed issuing CA " << subject_text(cert.get()) << " under " << subject_text(root.get()) << " ("
              << intermediates.size() << " intermediate(s)). Send the gateway SIGHUP to use it." << replaced << "\n";
    return 0;
}

int cmd_rotate(const Args& a) {
    fs::path dir = need_dir(a);
    X509Ptr root = read_cert_file(dir / "root.pem");
    PKeyPtr root_key = load_root_key(dir, read_passphrase(a));
    if (X509_check_private_key(root.get(), root_key.get()) != 1) throw TlsError("root.key does not match root.pem");
    std::string org;
    {
        char buf[256] = "";
        X509_NAME_get_text_by_NID(X509_get_subject_name(root.get()), NID_organizationName, buf, sizeof buf);
        org = buf;
    }
    PKeyPtr key = generate_key(EVP_PKEY_get_base_id(root_key.get()) == EVP_PKEY_RSA ? KeyType::rsa_3072 : KeyType::ec_p256);
    X509Ptr issuing = make_issuing_cert(key.get(), root.get(), root_key.get(), org,
                                        (org.empty() ? "Vigil" : org) + " Issuing CA", parse_days(a, "--issuing-days", 730));
    if (fs::exists(dir / "issuing.pem")) {
        X509Ptr old = read_cert_file(dir / "issuing.pem");
        std::string tag = fingerprint(old.get(), EVP_sha256()).substr(0, 11);
        tag.erase(std::remove(tag.begin(), tag.end(), ':'), tag.end());
        fs::create_directories(dir / "old");
        ::chmod((dir / "old").c_str(), 0700);
        fs::rename(dir / "issuing.pem", dir / "old" / ("issuing-" + tag + ".pem"));
        if (fs::exists(dir / "issuing.key")) fs::rename(dir / "issuing.key", dir / "old" / ("issuing-" + tag + ".key"));
    }
    write_file_atomic(dir / "issuing.key", key_to_pem(key.get()), 0600);
    write_file_atomic(dir / "issuing.pem", cert_to_pem(issuing.get()), 0644);
    std::cout << "Rotated: new issuing CA " << fingerprint(issuing.get(), EVP_sha256())
              << "; the old one is in " << (dir / "old").string() << ". Send the gateway SIGHUP to use it.\n";
    return 0;
}

nlohmann::json cert_json(X509* cert) {
    std::time_t now = std::time(nullptr);
    long days_left = static_cast<long>((not_after(cert) - now) / 86400);
    return {{"subject", subject_text(cert)},
            {"issuer", issuer_text(cert)},
            {"key", describe_key(X509_get0_pubkey(cert))},
            {"not_before", date_text(not_before(cert))},
            {"not_after", date_text(not_after(cert))},
            {"days_left", days_left},
            {"expired", not_after(cert) <= now},
            {"expires_soon", days_left < 30},
            {"sha256", fingerprint(cert, EVP_sha256())},
            {"sha1", fingerprint(cert, EVP_sha1())}};
}

int cmd_show(const Args& a) {
    fs::path dir = need_dir(a);
    if (!fs::exists(dir / "root.pem")) throw TlsError((dir / "root.pem").string() + ": not found");
    X509Ptr root = read_cert_file(dir / "root.pem");
    nlohmann::json out = {{"root", cert_json(root.get())}};
    if (fs::exists(dir / "issuing.pem")) {
        auto chain = read_certs_file(dir / "issuing.pem");
        std::vector<X509*> inter;
        for (size_t i = 1; i < chain.size(); ++i) inter.push_back(chain[i].get());
        std::string err = verify_chain(chain[0].get(), inter, {root.get()});
        out["issuing"] = cert_json(chain[0].get());
        out["issuing"]["intermediates"] = inter.size();
        out["chain_verifies"] = err.empty();
        if (!err.empty()) out["chain_error"] = err;
    }
    if (a.has("--json")) {
        std::cout << out.dump(2) << "\n";
        return out.contains("chain_verifies") && !out["chain_verifies"].get<bool>() ? 3 : 0;
    }
    auto print = [](const char* label, const nlohmann::json& c) {
        std::cout << label << "\n  subject:     " << c["subject"].get<std::string>()
                  << "\n  issuer:      " << c["issuer"].get<std::string>() << "\n  key:         " << c["key"].get<std::string>()
                  << "\n  valid from:  " << c["not_before"].get<std::string>() << "\n  valid until: "
                  << c["not_after"].get<std::string>() << " (" << c["days_left"].get<long>() << " days left)"
                  << (c["expired"].get<bool>() ? "  EXPIRED" : c["expires_soon"].get<bool>() ? "  EXPIRES SOON" : "")
                  << "\n  SHA-256:     " << c["sha256"].get<std::string>() << "\n  SHA-1:       "
                  << c["sha1"].get<std::string>() << "\n";
    };
    print("root CA", out["root"]);
    if (out.contains("issuing")) {
        print("issuing CA", out["issuing"]);
        std::cout << "  chain to root: " << (out["chain_verifies"].get<bool>() ? "verifies" : "DOES NOT VERIFY: " + out["chain_error"].get<std::string>()) << "\n";
    }
    for (const char* which : {"root", "issuing"}) {
        if (out.contains(which) && out[which]["expires_soon"].get<bool>())
            std::cerr << "vigil-ca: warning: the " << which << " CA expires within 30 days\n";
    }
    if (out.contains("chain_verifies") && !out["chain_verifies"].get<bool>()) {
        std::cerr << "vigil-ca: " << dir.string() << ": the issuing CA does not verify up to root.pem; the gateway "
                  << "refuses this folder\n";
        return 3;
    }
    return 0;
}

int cmd_export(const Args& a) {
    fs::path dir = need_dir(a);
    std::string format = a.get("--format"), which = a.get("--which", "root");
    if (format != "pem" && format != "der" && format != "p12") usage_error("--format must be pem, der or p12");
    if (which != "root" && which != "issuing") usage_error("--which must be root or issuing");
    if (!a.has("--out")) usage_error("export needs --out FILE");
    X509Ptr cert = read_cert_file(dir / (which + ".pem"));
    std::string data = format == "pem" ? cert_to_pem(cert.get())
                       : format == "der" ? cert_to_der(cert.get())
                                         : certs_to_p12({cert.get()}, subject_text(cert.get()));
    write_file_atomic(a.get("--out"), data, 0644);
    std::cout << "Wrote the " << which << " certificate (" << format << ", no key) to " << a.get("--out") << "\n";
    return 0;
}

int cmd_kit(const Args& a) {
    fs::path dir = need_dir(a);
    if (!a.has("--out")) usage_error("kit needs --out KITDIR");
    X509Ptr root = read_cert_file(dir / "root.pem");
    // A kit deploys this root to every machine: never one the issuing CA does not chain to.
    if (std::string err = check_ca_dir_chain(dir); !err.empty())
        throw TlsError(dir.string() + ": the issuing CA does not verify up to root.pem (" + err +
                       "); no kit written: it would deploy a root the gateway's certificates do not chain to");
    vigil::catools::ProxySettings proxy{a.get("--pac-url"), a.get("--proxy"), a.all("--no-proxy")};
    try {
        vigil::catools::check_proxy_settings(proxy);
    } catch (const std::invalid_argument& e) {
        usage_error(e.what());
    }
    vigil::catools::write_kit(root.get(), a.get("--out"), proxy);
    std::cout << "Wrote the deployment kit to " << a.get("--out") << " (see its README.md); root SHA-256 "
              << fingerprint(root.get(), EVP_sha256()) << "\n";
    return 0;
}

// The grammar: every command and the options it takes; anything else is refused (exit 2).
void declare(CLI::App& app) {
    using vigil::core::cli::flag;
    app.description("Creates, rotates, inspects and exports the CA that Vigil mints interception certificates from.");
    app.require_subcommand(1);
    const std::string passphrase_help =
        "the root key's passphrase: a file, - (the first line of standard input), env:NAME or fd:N";
    auto dir = [](CLI::App* c) { c->add_option("--dir", "the CA folder")->required()->type_name("DIR"); };
    auto key = [](CLI::App* c) {
        c->add_option("--key", "(default ec-p256)")->check(CLI::IsMember({"ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "rsa-4096"}));
    };
    auto* init = app.add_subcommand("init", "a root CA and an issuing CA signed by it (the gateway uses only the issuing key)");
    dir(init);
    init->add_option("--org", "(default Vigil)")->type_name("NAME");
    init->add_option("--cn", "(default ORG Root CA)")->type_name("NAME");
    key(init);
    init->add_option("--root-days", "(default 3650)")->type_name("N");
    init->add_option("--days", "as --root-days")->type_name("N");
    init->add_option("--issuing-days", "(default 730)")->type_name("N");
    flag(*init, "--no-issuing", "the gateway signs with the root key itself");
    vigil::core::cli::option(*init, "--root-key-passphrase-file",
                             passphrase_help + "; the root key is then stored encrypted (PKCS#8, AES-256)")
        ->type_name("SOURCE");
    flag(*init, "--force", "replace a CA already in DIR");
    init->footer("Keys are 0600, DIR 0700. Refuses to overwrite without --force.");
    auto* csr = app.add_subcommand("csr", "enterprise path: a new issuing key (issuing-pending.key) and a CSR for your PKI to sign");
    dir(csr);
    csr->add_option("--out", "")->required()->type_name("FILE");
    csr->add_option("--org", "")->type_name("NAME");
    csr->add_option("--cn", "")->type_name("NAME");
    key(csr);
    auto* install = app.add_subcommand("install-issuing", "installs the signed issuing certificate for the pending key");
    dir(install);
    install->add_option("--cert", "the signed issuing certificate")->required()->type_name("FILE");
    install->add_option("--chain", "the intermediates and the root (root.pem becomes this root)")->type_name("FILE");
    auto* rotate = app.add_subcommand("rotate", "a new issuing CA under the same root; the old one is kept in DIR/old/");
    dir(rotate);
    rotate->add_option("--issuing-days", "(default 730)")->type_name("N");
    rotate->add_option("--root-key-passphrase-file", passphrase_help)->type_name("SOURCE");
    auto* show = app.add_subcommand("show", "subject, issuer, key, validity, fingerprints, chain check");
    dir(show);
    flag(*show, "--json", "");
    auto* exp = app.add_subcommand("export", "certificates only, never a key (p12: certificate-only, empty password)");
    dir(exp);
    exp->add_option("--format", "")->required()->check(CLI::IsMember({"pem", "der", "p12"}));
    exp->add_option("--which", "(default root)")->check(CLI::IsMember({"root", "issuing"}));
    exp->add_option("--out", "")->required()->type_name("FILE");
    auto* kit = app.add_subcommand("kit", "a deployment kit: the root in every format, per-platform install files and steps");
    dir(kit);
    kit->add_option("--out", "")->required()->type_name("KITDIR");
    kit->add_option("--pac-url", "the gateway's PAC file, e.g. http://gw.corp.example:9090/proxy.pac: adds proxy/ settings per platform")
        ->type_name("URL");
    kit->add_option("--proxy", "HOST:PORT for shells and runtimes (and platforms when there is no --pac-url)")
        ->type_name("HOST:PORT");
    kit->add_option("--no-proxy", "a name (or .suffix) that goes direct (repeatable)")->type_name("NAME")->take_all()->allow_extra_args(false);
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"", "vigil-ca"};
    declare(app);
    if (int rc = vigil::core::cli::parse(app, argc, argv); rc >= 0) return rc;
    const Args a = vigil::core::cli::collect(app);
    const std::string& command = a.positional[0];
    try {
        if (command == "init") return cmd_init(a);
        if (command == "csr") return cmd_csr(a);
        if (command == "install-issuing") return cmd_install_issuing(a);
        if (command == "rotate") return cmd_rotate(a);
        if (command == "show") return cmd_show(a);
        if (command == "export") return cmd_export(a);
        return cmd_kit(a);
    } catch (const std::exception& e) {
        std::cerr << "vigil-ca: " << e.what() << "\n";
        return 1;
    }
}

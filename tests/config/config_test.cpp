// Configuration: defaults, TOML file, --set overrides, and errors that name file, line and key.
#include "config/config.hpp"

#include <gtest/gtest.h>

#include <tuple>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace vigil::config {
namespace {

struct TomlFile {
    std::string path;
    explicit TomlFile(const std::string& text) {
        char tmpl[] = "/tmp/vigil-config-XXXXXX";
        int fd = ::mkstemp(tmpl);
        ::close(fd);
        path = tmpl;
        std::ofstream(path) << text;
    }
    ~TomlFile() { ::unlink(path.c_str()); }
};

std::string error_of(const std::string& text, const Overrides& o = {}) {
    TomlFile f(text);
    try {
        load_config(f.path, o);
    } catch (const ConfigError& e) {
        std::string msg = e.what();
        for (auto pos = msg.find(f.path); pos != std::string::npos; pos = msg.find(f.path, pos))
            msg.replace(pos, f.path.size(), "FILE");
        return msg;
    }
    return "";
}

TEST(Config, DefaultsKeepPeopleOut) {
    Config c = load_config("", {});
    EXPECT_EQ(c.listen, "127.0.0.1:3128");
    ASSERT_EQ(c.allow_clients.size(), 2u);
    EXPECT_TRUE(any_contains(c.allow_clients, boost::asio::ip::make_address("127.0.0.1")));
    EXPECT_FALSE(any_contains(c.allow_clients, boost::asio::ip::make_address("10.1.2.3")));
    EXPECT_TRUE(any_contains(c.allowed_connect_ports, 443));
    EXPECT_FALSE(any_contains(c.allowed_connect_ports, 8443));
    EXPECT_FALSE(any_contains(c.allowed_http_ports, 25));
    EXPECT_TRUE(any_contains(c.allowed_http_ports, 8080));
    EXPECT_FALSE(c.allow_private_destinations);
    EXPECT_EQ(c.max_header_bytes, 65536u);
    EXPECT_EQ(c.max_headers, 100u);
}

TEST(Config, PagesBrandingIsCheckedWhenLoaded) {
    const std::string dir = "/tmp/vigil-pages-test-" + std::to_string(::getpid());
    std::filesystem::create_directories(dir);
    std::ofstream(dir + "/logo.png", std::ios::binary) << std::string("\x89PNG\r\n\x1a\n", 8);
    std::ofstream(dir + "/logo.bmp") << "BM";
    std::ofstream(dir + "/big.png", std::ios::binary) << std::string(70 * 1024, 'x');
    TomlFile f("[pages]\norganisation = \"Acme IT\"\nlogo_file = \"" + dir + "/logo.png\"\n"
               "help_url = \"https://help.acme.example/\"\n"
               "request_access_url = \"https://it.acme.example/ask?u={url}&c={category}&t={transaction}\"\n");
    Config c = load_config(f.path, {});
    EXPECT_EQ(c.pages.organisation, "Acme IT");
    EXPECT_EQ(c.pages.logo, "data:image/png;base64,iVBORw0KGgo=");
    EXPECT_EQ(c.pages.help_url, "https://help.acme.example/");
    for (const auto& [key, value, words] : std::vector<std::tuple<std::string, std::string, std::string>>{
             {"pages.help_url", "\"javascript:alert(1)\"", "expected an http:// or https:// URL"},
             {"pages.help_url", "\"https://x.example/{url}\"", "no {placeholders} here"},
             {"pages.request_access_url", "\"https://x.example/?q={user}\"", "unknown placeholder {user}"},
             {"pages.request_access_url", "\"https://x.example/a b\"", "space, quote"},
             {"pages.logo_file", "\"" + dir + "/logo.bmp\"", "must be a .png, .jpg, .gif or .svg"},
             {"pages.logo_file", "\"" + dir + "/big.png\"", "larger than 64 KiB"},
             {"pages.logo_file", "\"" + dir + "/none.png\"", "cannot read"}}) {
        try {
            load_config("", {{key, value}});
            ADD_FAILURE() << key << " = " << value << " was accepted";
        } catch (const ConfigError& e) {
            EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
        }
    }
    std::filesystem::remove_all(dir);
}

TEST(Config, RelativePathsAreFromTheFileThatNamesThem) {
    TomlFile f(R"([tls]
ca_dir = "ca"
extra_ca_file = "/etc/ssl/extra.pem"
[rules]
path = "../rules.db"
[audit]
path = "audit.db"
jsonl = ""
[cache]
dir = "cache"
)");
    const std::string dir = f.path.substr(0, f.path.rfind('/') + 1);  // /tmp/
    Config c = load_config(f.path, {{"dns.hosts_file", "\"hosts\""}});
    EXPECT_EQ(c.ca_dir, dir + "ca");  // not ./ca: where vigil was started from does not matter
    EXPECT_EQ(c.rules_path, dir + "../rules.db");
    EXPECT_EQ(c.audit_path, dir + "audit.db");
    EXPECT_EQ(c.cache_dir, dir + "cache");
    EXPECT_EQ(c.extra_ca_file, "/etc/ssl/extra.pem");  // absolute stays
    EXPECT_EQ(c.audit_jsonl, "");                      // empty stays "none"
    EXPECT_EQ(c.hosts_file, "hosts");                  // a command-line value: from the current directory
    EXPECT_EQ(load_config("", {}).ca_dir, "var/ca");   // the built-in default too
}

TEST(Config, ReadsFile) {
    TomlFile f(R"([proxy]
listen = "0.0.0.0:8080"
threads = 3
allow_clients = ["10.0.0.0/8", "2001:db8::/32"]
allowed_connect_ports = [443, "8000-8100"]
allow_private_destinations = true
[tls]
ca_dir = "/etc/vigil/ca"
[dns]
hosts_file = "/etc/vigil/hosts"
[log]
level = "debug"
[timeouts]
idle = 5
)");
    Config c = load_config(f.path, {});
    EXPECT_EQ(c.listen, "0.0.0.0:8080");
    EXPECT_EQ(c.threads, 3u);
    EXPECT_TRUE(any_contains(c.allow_clients, boost::asio::ip::make_address("2001:db8::5")));
    EXPECT_TRUE(any_contains(c.allowed_connect_ports, 8050));
    EXPECT_FALSE(any_contains(c.allowed_connect_ports, 8101));
    EXPECT_TRUE(c.allow_private_destinations);
    EXPECT_EQ(c.ca_dir, "/etc/vigil/ca");
    EXPECT_EQ(c.hosts_file, "/etc/vigil/hosts");
    EXPECT_EQ(c.log_level, "debug");
    EXPECT_EQ(c.idle.count(), 5);
}

TEST(Config, OverridesWinAndAcceptBareStrings) {
    TomlFile f("[proxy]\nthreads = 3\n");
    Config c = load_config(f.path, {{"proxy.threads", "5"},
                                    {"proxy.allowed_connect_ports", "[443,8443]"},
                                    {"tls.ca_dir", "var/other-ca"}});
    EXPECT_EQ(c.threads, 5u);
    EXPECT_TRUE(any_contains(c.allowed_connect_ports, 8443));
    EXPECT_EQ(c.ca_dir, "var/other-ca");
}

TEST(Config, ErrorsNameFileLineAndKey) {
    EXPECT_EQ(error_of("[proxy]\n\nthreads = \"many\"\n"), "FILE:3: proxy.threads: expected an integer");
    EXPECT_EQ(error_of("[proxy]\nthreads = 9999\n"), "FILE:2: proxy.threads: must be between 0 and 256");
    EXPECT_EQ(error_of("[proxy]\nlistne = \"x\"\n"), "FILE:2: proxy.listne: unknown key");
    EXPECT_EQ(error_of("[prox]\nlisten = \"x\"\n"), "FILE:2: prox.listen: unknown key");
    EXPECT_EQ(error_of("[proxy]\nallow_clients = [\"10.0.0.0/33\"]\n"),
              "FILE:2: proxy.allow_clients: not an address or CIDR: \"10.0.0.0/33\"");
    EXPECT_EQ(error_of("[proxy]\nallowed_connect_ports = [70000]\n"),
              "FILE:2: proxy.allowed_connect_ports: expected ports 1-65535 or ranges like \"1024-65535\"");
    EXPECT_EQ(error_of("[log]\nlevel = \"loud\"\n"), "FILE:2: log.level: expected one of debug, info, warn, error");
    EXPECT_EQ(error_of("[proxy\nx=1\n").substr(0, 7), "FILE:1:");  // TOML syntax error
    EXPECT_EQ(error_of("threads = 1\n"), "FILE:1: threads: expected a [section]");
}

TEST(Config, EveryErrorIsReportedInFileOrder) {
    // Three mistakes: all three, by line, in one message (one fix per restart was the old way).
    EXPECT_EQ(error_of("[proxy]\nthreads = \"many\"\nlistne = \"x\"\n\n[log]\nlevel = \"loud\"\n"),
              "FILE:2: proxy.threads: expected an integer\n"
              "FILE:3: proxy.listne: unknown key\n"
              "FILE:6: log.level: expected one of debug, info, warn, error");
    std::string many = "[proxy]\n";
    for (int i = 0; i < 25; ++i) many += "bad" + std::to_string(i) + " = 1\n";
    const std::string e = error_of(many);
    EXPECT_NE(e.find("(and 5 more)"), std::string::npos) << e;
}

TEST(Config, MissingFileSaysSo) {
    try {
        load_config("/nonexistent/vigil.toml", {});
        FAIL();
    } catch (const ConfigError& e) {
        EXPECT_EQ(std::string(e.what()), "cannot open config /nonexistent/vigil.toml: No such file or directory");
    }
}

TEST(Config, OverrideErrorsNameTheKey) {
    try {
        load_config("", {{"proxy.threads", "lots"}});
        FAIL();
    } catch (const ConfigError& e) {
        EXPECT_NE(std::string(e.what()).find("proxy.threads: expected an integer"), std::string::npos) << e.what();
    }
    EXPECT_THROW(load_config("", {{"nope.key", "1"}}), ConfigError);
    EXPECT_THROW(load_config("/nonexistent/vigil.toml", {}), ConfigError);
}

TEST(Config, Http2KeysAndAlpnLists) {
    Config d = load_config("", {});
    EXPECT_EQ(d.client_alpn, (std::vector<std::string>{"h2", "http/1.1"}));
    EXPECT_TRUE(d.origin_h2);
    EXPECT_EQ(d.http2.max_streams, 100u);
    EXPECT_EQ(d.http2.origin_connections, 8u);
    Config c = load_config("", {{"tls.client_alpn", "[\"http/1.1\"]"}, {"tls.origin_alpn", "[\"http/1.1\"]"},
                                {"http2.max_concurrent_streams", "20"}, {"http2.stream_window", "65536"}});
    EXPECT_EQ(c.client_alpn, (std::vector<std::string>{"http/1.1"}));
    EXPECT_FALSE(c.origin_h2);
    EXPECT_EQ(c.http2.max_streams, 20u);
    EXPECT_EQ(c.http2.stream_window, 65536u);
    for (const auto& [key, value, words] : std::vector<std::tuple<std::string, std::string, std::string>>{
             {"tls.client_alpn", "[\"h3\"]", "unknown protocol \"h3\""},
             {"tls.client_alpn", "[\"h2\", \"h2\"]", "listed twice"},
             {"tls.client_alpn", "[]", "at least one"},
             {"tls.origin_alpn", "[\"h2\"]", "must list \"http/1.1\""},
             {"http2.max_concurrent_streams", "0", "tls"},  // (the range's words are get_int's)
             {"http2.stream_window", "100", "http2.stream_window"},
         }) {
        try {
            load_config("", {{key, value}});
            ADD_FAILURE() << key << " = " << value << " was accepted";
        } catch (const ConfigError& e) {
            EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
            if (words != "tls") {
                EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
            }
        }
    }
}

TEST(Config, CacheSizes) {
    Config c = load_config("", {{"cache.dir", "\"/var/cache/vigil\""}, {"cache.max_bytes", "\"20GB\""},
                                {"cache.memory_bytes", "\"256MiB\""}, {"cache.max_object_bytes", "65536"}});
    EXPECT_TRUE(c.cache);
    EXPECT_EQ(c.cache_dir, "/var/cache/vigil");
    EXPECT_EQ(c.cache_max_bytes, 20'000'000'000u);
    EXPECT_EQ(c.cache_memory_bytes, 256u << 20);
    EXPECT_EQ(c.cache_max_object_bytes, 65536u);
    for (const auto& [key, value, words] : std::vector<std::tuple<std::string, std::string, std::string>>{
             {"cache.max_bytes", "\"lots\"", "expected bytes or a size"},
             {"cache.max_bytes", "1000", "between 1048576 bytes and 1TB"},
             {"cache.max_object_bytes", "true", "expected bytes or a size"}}) {
        try {
            load_config("", {{key, value}});
            ADD_FAILURE() << key << " = " << value;
        } catch (const ConfigError& e) {
            EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
        }
    }
}

TEST(Config, OriginErrorPolicyAndExceptions) {
    Config c = load_config("", {{"tls.origin_errors", "{expired = \"warn\", self_signed = \"block\"}"},
                                {"tls.origin_exceptions", "[{host = \"Intranet.Corp.\", allow = [\"self_signed\"]}, "
                                                          "{host = \"legacy.corp\", pin_sha256 = \"" + std::string(64, 'a') + "\"}]"}});
    EXPECT_EQ(c.origin_error_warn, std::vector<std::string>{"expired"});
    ASSERT_EQ(c.origin_exceptions.size(), 2u);
    EXPECT_EQ(c.origin_exceptions[0].host, "intranet.corp");
    EXPECT_EQ(c.origin_exceptions[1].pin_sha256.substr(0, 8), "AA:AA:AA");
    for (const auto& [key, value, words] : std::vector<std::tuple<std::string, std::string, std::string>>{
             {"tls.origin_errors", "{expired = \"allow\"}", "never allow"},
             {"tls.origin_errors", "{sunburn = \"warn\"}", "unknown certificate error class \"sunburn\""},
             {"tls.origin_exceptions", "[{host = \"*.corp\", allow = [\"expired\"]}]", "no wildcards or patterns"},
             {"tls.origin_exceptions", "[{host = \"a.corp\"}]", "give allow = [...] or pin_sha256"},
             {"tls.origin_exceptions", "[{host = \"a.corp\", pin_sha256 = \"abc\"}]", "64 hex digits"},
             {"tls.origin_exceptions", "[{host = \"a.corp\", allow = [\"expired\"], colour = 1}]", "unknown key"}}) {
        try {
            load_config("", {{key, value}});
            ADD_FAILURE() << "accepted " << key << " = " << value;
        } catch (const ConfigError& e) {
            EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
            EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
        }
    }
}

TEST(Config, OriginTrustKeys) {
    Config d = load_config("", {});
    EXPECT_TRUE(d.system_store);
    EXPECT_EQ(d.max_chain_depth, 8);
    EXPECT_EQ(d.strictness, tls::Strictness::browser);
    Config c = load_config("", {{"tls.system_store", "false"}, {"tls.max_chain_depth", "12"}, {"tls.strictness", "\"strict\""}});
    EXPECT_FALSE(c.system_store);
    EXPECT_EQ(c.max_chain_depth, 12);
    EXPECT_EQ(c.strictness, tls::Strictness::strict);
    for (const auto& [key, value, words] : std::vector<std::tuple<std::string, std::string, std::string>>{
             {"tls.strictness", "\"lax\"", "expected \"browser\" or \"strict\""},
             {"tls.max_chain_depth", "0", "tls.max_chain_depth"},
             {"tls.max_chain_depth", "17", "tls.max_chain_depth"},
             {"tls.system_store", "\"no\"", "tls.system_store"}}) {
        try {
            load_config("", {{key, value}});
            ADD_FAILURE() << "accepted " << key << " = " << value;
        } catch (const ConfigError& e) {
            EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
        }
    }
}

TEST(Config, RevocationAndFetching) {
    Config d = load_config("", {});
    EXPECT_EQ(d.revocation, tls::Revocation::staple);
    EXPECT_FALSE(d.ocsp_unknown_blocks);
    EXPECT_TRUE(d.aia_fetch);
    Config c = load_config("", {{"tls.revocation", "\"ocsp\""}, {"tls.ocsp_unknown", "\"block\""},
                                {"tls.aia_fetch", "false"}, {"timeouts.fetch", "2"}});
    EXPECT_EQ(c.revocation, tls::Revocation::ocsp);
    EXPECT_TRUE(c.ocsp_unknown_blocks);
    EXPECT_FALSE(c.aia_fetch);
    EXPECT_EQ(c.fetch, std::chrono::seconds(2));
    for (const auto& [key, value, words] : std::vector<std::tuple<std::string, std::string, std::string>>{
             {"tls.revocation", "\"crl\"", "expected \"off\", \"staple\" or \"ocsp\""},
             {"tls.ocsp_unknown", "\"maybe\"", "expected \"allow\" or \"block\""},
             {"tls.aia_fetch", "\"yes\"", "tls.aia_fetch"}}) {
        try {
            load_config("", {{key, value}});
            ADD_FAILURE() << "accepted " << key << " = " << value;
        } catch (const ConfigError& e) {
            EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
        }
    }
}

}  // namespace
}  // namespace vigil::config

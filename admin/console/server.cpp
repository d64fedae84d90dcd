// One thread, one coroutine per connection (an administrators' console: a handful of users).
// Sign-in checks PBKDF2 on that thread (~0.1 s); everything else is a short SQLite read.
#include "admin/console/server.hpp"

#include <openssl/rand.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <sstream>

#include "admin/console/data.hpp"
#include "admin/console/http_util.hpp"
#include "admin/console/views.hpp"
#include "audit/filter.hpp"
#include "core/encoding.hpp"
#include "core/log.hpp"
#include "identity/directory.hpp"
#include "identity/kerberos.hpp"
#include "io/asio.hpp"
#include "tls/ca.hpp"
#include "tls/mint.hpp"
#include "wire/onboarding.hpp"

namespace vigil::console {
namespace {

using namespace vigil::io;
namespace http = beast::http;
namespace ssl = net::ssl;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

struct Session {
    std::string user, csrf;
    Role role;
    Clock::time_point expires;
};

class Console {
public:
    Console(const config::Config& cfg, const std::string& users_path)
        : cfg_(cfg), users_(ConsoleDb::open(users_path)) {
        const auto& c = cfg.console;
        if (cfg.ldap.enabled() && !(c.viewer_groups.empty() && c.analyst_groups.empty() && c.admin_groups.empty())) {
            try {
                directory_ = std::make_unique<identity::Directory>(cfg.ldap);
            } catch (const identity::IdentityError& e) {
                throw config::ConfigError(e.what());
            }
        }
    }

    Response handle(const Request& req, const std::string& client);

private:
    Response page(int status, const std::string& html) {
        Response res{static_cast<http::status>(status), 11};
        res.set(http::field::content_type, "text/html; charset=utf-8");
        res.body() = html;
        return res;
    }
    Response redirect(const std::string& to) {
        Response res{http::status::see_other, 11};
        res.set(http::field::location, to);
        return res;
    }
    Response login(const Request& req, const std::string& client);
    Response routes(const Request& req, const std::string& path, const std::map<std::string, std::string>& query,
                    Session& s, const std::string& client);
    bool throttled(const std::string& client);

    // A directory user's role: the highest of the console.*_groups they are in.
    std::optional<Role> directory_role(const std::string& user, const std::string& password, std::string& why);

    const config::Config& cfg_;
    std::unique_ptr<ConsoleDb> users_;
    std::unique_ptr<identity::Directory> directory_;
    std::map<std::string, Session> sessions_;
    std::map<std::string, std::pair<Clock::time_point, int>> failures_;
};

bool Console::throttled(const std::string& client) {
    auto it = failures_.find(client);
    if (it == failures_.end()) return false;
    if (Clock::now() - it->second.first > std::chrono::minutes(1)) {
        failures_.erase(it);
        return false;
    }
    return it->second.second >= cfg_.console.max_failures;
}

std::optional<Role> Console::directory_role(const std::string& user, const std::string& password, std::string& why) {
    if (!directory_) return std::nullopt;
    auto r = directory_->check_password(user, password);
    if (r.status == identity::Lookup::unavailable) {
        why = "directory unreachable: " + r.error;
        return std::nullopt;
    }
    if (r.status != identity::Lookup::ok) return std::nullopt;
    auto in = [&](const std::vector<std::string>& groups) {
        return std::any_of(r.groups.begin(), r.groups.end(),
                           [&](const std::string& g) { return std::find(groups.begin(), groups.end(), g) != groups.end(); });
    };
    const auto& c = cfg_.console;
    if (in(c.admin_groups)) return Role::admin;
    if (in(c.analyst_groups)) return Role::analyst;
    if (in(c.viewer_groups)) return Role::viewer;
    why = "not in a console group";
    return std::nullopt;
}

Response Console::login(const Request& req, const std::string& client) {
    if (req.method() == http::verb::get) {
        // One token per browser while it signs in: a second GET (another tab, a favicon
        // redirect) must not invalidate the form already shown.
        std::string t = cookie(req, "vigil_login");
        if (t.size() != 48 || t.find_first_not_of("0123456789abcdef") != std::string::npos) t = token();
        Response res = page(200, login_page(t, ""));
        res.set(http::field::set_cookie, "vigil_login=" + t + "; Secure; HttpOnly; SameSite=Strict; Path=/login");
        return res;
    }
    auto form = parse_form(req.body());
    const std::string user = form["user"].substr(0, 64);
    // The sign-in form is CSRF-protected too (double submit: a cookie and a field).
    const std::string expected = cookie(req, "vigil_login");
    if (expected.empty() || form["csrf"] != expected) {
        users_->event(user, client, "sign-in refused", "missing or wrong CSRF token");
        return page(403, login_page(token(), "the sign-in form expired; load it again"));
    }
    if (throttled(client)) {
        users_->event(user, client, "sign-in throttled", "");
        return page(429, login_page(expected, "too many failed sign-ins from this address; wait a minute"));
    }
    auto role = users_->check(user, form["password"]);
    std::string why;
    const bool local = role.has_value();
    if (!role) role = directory_role(user, form["password"], why);
    if (!role && why.rfind("directory unreachable", 0) == 0) {
        users_->event(user, client, "sign-in failed", why);
        core::log_warn("console: " + why);
        return page(503, login_page(expected, "the company directory cannot be reached; try again shortly"));
    }
    if (!role) {
        auto& f = failures_[client];
        if (f.second == 0 || Clock::now() - f.first > std::chrono::minutes(1)) f = {Clock::now(), 0};
        ++f.second;
        users_->event(user, client, "sign-in failed", why);
        core::log_warn("console: sign-in failed for \"" + user + "\" from " + client);
        return page(401, login_page(expected, "the user name or password is not right"));
    }
    std::erase_if(sessions_, [](const auto& kv) { return kv.second.expires < Clock::now(); });  // bounded by live ones
    const std::string id = token();
    sessions_[id] = Session{user, token(), *role, Clock::now() + cfg_.console.session};
    users_->event(user, client, "sign-in", std::string(role_name(*role)) + (local ? "" : " (directory)"));
    Response res = redirect("/");
    res.set(http::field::set_cookie, "vigil_console=" + id + "; Secure; HttpOnly; SameSite=Strict; Path=/");
    return res;
}

Response Console::handle(const Request& req, const std::string& client) {
    std::string target(req.target());
    const auto q = target.find('?');
    const std::string path = target.substr(0, q);
    const auto query = q == std::string::npos ? std::map<std::string, std::string>{} : parse_form(target.substr(q + 1));
    if (path == "/static/console.css" || path == "/static/console.js" || path == "/static/chart.js") {
        static const std::string dir = static_dir();
        static const std::map<std::string, std::string> files = {{"/static/console.css", dir + "/console.css"},
                                                                 {"/static/console.js", dir + "/console.js"},
                                                                 {"/static/chart.js", VIGIL_CHART_JS}};
        std::ifstream in(files.at(path));
        std::stringstream s;
        s << in.rdbuf();
        Response res{in ? http::status::ok : http::status::not_found, 11};
        res.set(http::field::content_type, path.ends_with(".css") ? "text/css" : "text/javascript");
        res.body() = s.str();
        return res;
    }
    if (path == "/login") return login(req, client);
    if (path == "/favicon.ico") return page(404, "");
    auto it = sessions_.find(cookie(req, "vigil_console"));
    if (it != sessions_.end() && it->second.expires < Clock::now()) {
        sessions_.erase(it);
        it = sessions_.end();
    }
    if (it == sessions_.end()) return req.method() == http::verb::get ? redirect("/login") : page(401, login_page(token(), ""));
    Session& s = it->second;
    if (req.method() == http::verb::post) {
        // Every change carries the session's token: a form on another site cannot make one.
        if (parse_form(req.body())["csrf"] != s.csrf) {
            users_->event(s.user, client, "refused", "missing or wrong CSRF token for " + path);
            return page(403, message_page({s.user, s.role, s.csrf}, "Refused", "the form expired; load the page again"));
        }
        if (path == "/logout") {
            users_->event(s.user, client, "sign-out", "");
            sessions_.erase(it);
            return redirect("/login");
        }
    }
    return routes(req, path, query, s, client);
}

Response Console::routes(const Request& req, const std::string& path, const std::map<std::string, std::string>& query,
                         Session& s, const std::string& client) {
    const PageContext c{s.user, s.role, s.csrf};
    auto get = [&](const std::string& k) {
        auto i = query.find(k);
        return i == query.end() ? std::string() : i->second;
    };
    const bool post = req.method() == http::verb::post;
    if (!post && path == "/") {
        std::string range = get("range").empty() ? "day" : get("range");
        if (range != "hour" && range != "week") range = "day";
        const int64_t span = range == "hour" ? 3600000 : range == "week" ? 7 * 86400000LL : 86400000;
        auto store = audit::Store::open(cfg_.audit_path, audit::Store::Mode::read_only);
        json o = overview(*store, now_ms() - span, now_ms());
        json meta = {{"ruleset_version", rules::RuleDb::open(cfg_.rules_path, rules::RuleDb::Mode::read_only)->version()}};
        json ca = ca_view(cfg_.ca_dir);
        meta["ca_days_left"] = ca.contains("issuing") ? ca["issuing"]["days_left"] : ca["root"]["days_left"];
        return page(200, overview_page(c, o, meta, range));
    }
    if (!post && path == "/api/overview") {
        const std::string range = get("range");
        const int64_t span = range == "hour" ? 3600000 : range == "week" ? 7 * 86400000LL : 86400000;
        auto store = audit::Store::open(cfg_.audit_path, audit::Store::Mode::read_only);
        Response res{http::status::ok, 11};
        res.set(http::field::content_type, "application/json");
        res.body() = overview(*store, now_ms() - span, now_ms()).dump(-1, ' ', false, json::error_handler_t::replace);
        return res;
    }
    if (!post && (path == "/audit" || path == "/audit/export")) {
        auto store = audit::Store::open(cfg_.audit_path, audit::Store::Mode::read_only);
        try {
            auto filters = audit_filters(query);
            if (path == "/audit/export") {
                const std::string fmt = get("format") == "csv" ? "csv" : "jsonl";
                Response res{http::status::ok, 11};
                res.set(http::field::content_type, fmt == "csv" ? "text/csv; charset=utf-8" : "application/x-ndjson");
                res.set(http::field::content_disposition, "attachment; filename=\"vigil-audit." + fmt + "\"");
                res.body() = audit_export(*store, filters, fmt, now_ms());
                users_->event(s.user, client, "export", fmt);
                return res;
            }
            const int page_no = std::max(0, std::atoi(get("page").c_str()));
            return page(200, audit_page_html(c, audit_page(*store, filters, page_no, now_ms()), query, ""));
        } catch (const audit::FilterError& e) {
            return page(400, audit_page_html(c, json(), query, e.what()));
        }
    }
    if (!post && path == "/audit/record") {
        auto store = audit::Store::open(cfg_.audit_path, audit::Store::Mode::read_only);
        return page(200, record_page(c, audit_record(*store, std::atoll(get("id").c_str()))));
    }
    if (!post && path == "/audit/verify") {
        auto store = audit::Store::open(cfg_.audit_path, audit::Store::Mode::read_only);
        auto r = store->verify();
        const std::string problem = !r.ok ? "row " + std::to_string(r.bad_row) + " " + r.problem : r.rollups;
        return page(200, verify_page(c, problem.empty(), r.rows, problem));
    }
    if (path == "/rules" || path == "/rules/test" || path == "/rules/change") {
        auto db = rules::RuleDb::open(cfg_.rules_path, post && path == "/rules/change" ? rules::RuleDb::Mode::read_write
                                                                                       : rules::RuleDb::Mode::read_only);
        json test;
        std::string message;
        if (post && path == "/rules/test") {
            if (s.role < Role::analyst) {
                users_->event(s.user, client, "refused", "rule test needs the analyst role");
                return page(403, message_page(c, "Refused", "testing rules needs the analyst or admin role"));
            }
            auto form = parse_form(req.body());
            std::vector<std::string> groups;
            std::stringstream gs(form["groups"]);
            for (std::string g; std::getline(gs, g, ',');)
                if (!g.empty()) groups.push_back(g);
            test = rule_test(*db, form["url"], form["user"], groups);
        } else if (post) {
            if (s.role != Role::admin) {
                users_->event(s.user, client, "refused", "rule change needs the admin role");
                return page(403, message_page(c, "Refused", "changing rules needs the admin role"));
            }
            auto form = parse_form(req.body());
            const std::string actor = "console:" + s.user, op = form["op"];
            try {
                if (op == "add-host") {
                    rules::RuleData d;
                    d.hosts.push_back({rules::normalize_host_pattern(form["pattern"]), form["category"]});
                    db->merge(d, actor, "add host " + form["pattern"]);
                    message = "added host " + form["pattern"] + " to " + form["category"];
                } else if (op == "enable-policy" || op == "disable-policy") {
                    db->set_enabled(rules::Kind::policy, form["name"], op == "enable-policy", actor);
                    message = (op == "enable-policy" ? "enabled policy " : "disabled policy ") + form["name"];
                } else {
                    message = "unknown change";
                }
                users_->event(s.user, client, "rule change", message);
                message += " (ruleset version " + std::to_string(db->version()) + ")";
            } catch (const rules::RulesError& e) {
                message = std::string("not changed: ") + e.what();
            }
        }
        return page(200, rules_page(c, rules_view(*db), test, message));
    }
    if (!post && path == "/ca") return page(200, ca_page(c, ca_view(cfg_.ca_dir)));
    if (!post && path.rfind("/ca/", 0) == 0) {
        auto ca = tls::load_ca_dir(cfg_.ca_dir);
        auto dl = wire::onboarding_response(ca.root.get(), path.substr(3));
        Response res{static_cast<http::status>(dl.status), 11};
        res.set(http::field::content_type, dl.content_type);
        if (!dl.filename.empty()) res.set(http::field::content_disposition, "attachment; filename=\"" + dl.filename + "\"");
        res.body() = dl.body;
        return res;
    }
    return page(404, message_page(c, "Not found", "no such page"));
}


net::awaitable<void> session(tcp::socket socket, ssl::context& ctx, Console& console) {
    error_code ec;
    const std::string client = socket.remote_endpoint(ec).address().to_string();
    ssl::stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(socket)), ctx);
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(10));
    auto [hec] = co_await stream.async_handshake(ssl::stream_base::server, use_nothrow);
    if (hec) co_return;
    beast::flat_buffer buf;
    for (;;) {
        http::request_parser<http::string_body> parser;
        parser.body_limit(64 * 1024);
        beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(60));
        auto [rec, rn] = co_await http::async_read(stream, buf, parser, use_nothrow);
        if (rec) co_return;
        Response res;
        try {
            res = console.handle(parser.get(), client);
        } catch (const std::exception& e) {
            core::log_error(std::string("console: ") + e.what());
            res = Response{http::status::internal_server_error, 11};
            res.set(http::field::content_type, "text/plain; charset=utf-8");
            res.body() = std::string("error: ") + e.what() + "\n";
        }
        harden(res);
        res.keep_alive(parser.get().keep_alive());
        res.prepare_payload();
        auto [wec, wn] = co_await http::async_write(stream, res, use_nothrow);
        if (wec || !res.keep_alive()) co_return;
    }
}

net::awaitable<void> accept_loop(tcp::acceptor& acceptor, ssl::context& ctx, Console& console, const config::Config& cfg) {
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(use_nothrow);
        if (ec == net::error::operation_aborted) co_return;
        if (ec) continue;
        error_code rec;
        auto remote = socket.remote_endpoint(rec);
        if (rec || !any_contains(cfg.console.allow, remote.address())) continue;
        net::co_spawn(acceptor.get_executor(), session(std::move(socket), ctx, console), net::detached);
    }
}

}  // namespace

int serve(const config::Config& cfg, const std::string& users_path, const std::string& ready_file) {
    ssl::context ctx(ssl::context::tls_server);
    SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
    std::unique_ptr<tls::LeafMinter> minter;
    if (!cfg.console.cert_file.empty()) {
        ctx.use_certificate_chain_file(cfg.console.cert_file);
        ctx.use_private_key_file(cfg.console.key_file, ssl::context::pem);
    } else {
        // A certificate for console.host from the gateway's own CA, which clients already trust.
        auto ca = std::make_shared<const tls::CaMaterial>(tls::load_ca_dir(cfg.ca_dir));
        minter = std::make_unique<tls::LeafMinter>(ca);
        const std::string host = tls::normalize_host(cfg.console.host);
        if (host.empty()) throw config::ConfigError("console.host: not a host name or address: " + cfg.console.host);
        auto leaf = minter->mint(host);
        SSL_CTX_use_certificate(ctx.native_handle(), leaf->leaf.get());
        SSL_CTX_use_PrivateKey(ctx.native_handle(), minter->leaf_key());
        for (const auto& cert : ca->chain) SSL_CTX_add1_chain_cert(ctx.native_handle(), cert.get());
    }
    Console console(cfg, users_path);
    net::io_context ioc{1};
    // ADDRESS:PORT, [IPv6]:PORT; port 0 picks a free one.
    const std::string& listen = cfg.console.listen;
    const auto colon = listen.rfind(':');
    std::string host = colon == std::string::npos ? "" : listen.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    error_code aec;
    const auto address = net::ip::make_address(host, aec);
    const std::string port_text = colon == std::string::npos ? "" : listen.substr(colon + 1);
    if (aec || port_text.empty() || port_text.size() > 5 || port_text.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(port_text) > 65535)
        throw config::ConfigError("console.listen: expected ADDRESS:PORT, not " + listen);
    tcp::acceptor acceptor(ioc, tcp::endpoint(address, uint16_t(std::stoi(port_text))));
    const auto port = acceptor.local_endpoint().port();
    core::log_info("vigil-console on https://" + cfg.console.host + ":" + std::to_string(port) + "/");
    if (!ready_file.empty()) std::ofstream(ready_file) << "{\"port\": " << port << "}\n";
    net::co_spawn(ioc, accept_loop(acceptor, ctx, console, cfg), net::detached);
    net::signal_set signals(ioc, SIGINT, SIGTERM);
    signals.async_wait([&](error_code, int) {
        error_code ignored;
        acceptor.close(ignored);
        ioc.stop();
    });
    ioc.run();
    return 0;
}

}  // namespace vigil::console

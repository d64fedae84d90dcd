// HttpRelay's definitions, first part: a transaction top-down and the request phase (the rest
// in exchange_impl.hpp, answer_impl.hpp, respond_impl.hpp, cached_impl.hpp). Included only
// where the relay is instantiated (relay.cpp, the unit tests, through cached_impl.hpp).
#pragma once

#include <boost/asio/experimental/awaitable_operators.hpp>

#include "session/policy.hpp"
#include "session/relay.hpp"
#include "wire/messages.hpp"

namespace vigil::session {

template <class Client, class Upstream>
struct HttpRelay<Client, Upstream>::Exchange {
    RequestParser& parser;
    http::request<http::buffer_body>& in;
    const Authority& origin;
    std::string target;  // origin-form, without a continue token
    std::string scheme;  // "http" or "https"
    std::string url;
    TxAudit& tx;
    unsigned version = 11;  // what the client speaks: 10 or 11
    std::shared_ptr<const inspect::RuleSet> rules;
    inspect::Subject subject;
    inspect::Verdict verdict;
    bool scan = true;  // not bypassed by policy
    bool client_keep_alive = false;
    bool upgrade = false;
    bool has_body = false;
    std::string expect;
    CacheUse cu;
    http::request<http::buffer_body> out;  // the head sent to the origin
    double request_time = 0;
    std::optional<http::response_parser<http::buffer_body>> rp;  // the origin's response
    std::unique_ptr<inspect::BodyScanner> res_scan;
    std::optional<PageInfo> refusal;  // a phase that stops the transaction: the page to answer with
    std::optional<bool> continue_link;  // the request carried a Continue link: whether it is valid
    bool https() const { return scheme == "https"; }
};

template <class Client, class Upstream>
HttpRelay<Client, Upstream>::HttpRelay(RelayServices sv, Client& client, beast::flat_buffer& client_buf,
                                       uint64_t conn_id, std::string client_ip, typename Origin::Connect connect)
    : sv_(sv), client_(client), cbuf_(client_buf), cid_(conn_id), client_ip_(std::move(client_ip)),
      origin_(std::move(connect)) {}

// One transaction, top-down: request phase, the cache, the exchange with the origin, the
// response phase. Each returns false once the client has been answered otherwise.
template <class Client, class Upstream>
net::awaitable<bool> HttpRelay<Client, Upstream>::transaction(RequestParser& parser, const Authority& origin,
                                                              const std::string& raw_target, bool https) {
    TxAudit tx(sv_.audit, base_);
    tx_ = &tx;
    struct Clear {
        TxAudit*& p;
        ~Clear() { p = nullptr; }
    } clear_tx{tx_};
    Exchange x{parser, parser.get(), origin, raw_target, https ? "https" : "http", {}, tx};
    x.url = full_url(x.scheme, origin, x.target);
    tx.rec().method = std::string(x.in.method_string());
    tx.rec().scheme = x.scheme;
    tx.rec().host = origin.host;
    tx.rec().port = origin.port;
    tx.rec().url = x.url;
    tx.rec().user_agent = std::string(x.in[http::field::user_agent]).substr(0, 512);
    if (!admit(x)) co_return co_await answer(x);

    // The cache (docs/caching.md): a fresh stored response is the answer; a stale one with
    // a validator is revalidated; anything else goes to the origin and may be stored.
    if (sv_.cache.store && !x.upgrade)
        x.cu = cache_lookup(*sv_.cache.store, x.in, x.url, x.scan && !x.has_body && !origin_.personal());
    if (x.cu.entry && !x.cu.entry->body)
        x.cu.entry = co_await load_cached_body(*sv_.cache.disk, *sv_.cache.store, x.cu.entry);
    if (x.cu.asked) tx.rec().cache = "MISS";
    if (x.cu.entry && x.cu.fresh) co_return co_await serve_cached(x, x.cu.entry, "HIT");
    if (x.cu.only_if_cached) {
        const Failure f{Fail::cache_only_miss,
                        "the request asked for a cached answer only (only-if-cached) and Vigil has no fresh one", x.url};
        co_return co_await refuse(f, x.version);
    }

    build_origin_request(x);
    if (!co_await exchange_with_origin(x)) co_return false;
    http::response<http::buffer_body> res;
    std::unique_ptr<Compressor> compressor;
    switch (respond(x, res, compressor)) {
        case ResponseStep::deliver: co_return co_await deliver(x, res, std::move(compressor));
        case ResponseStep::upgrade: co_return co_await switch_protocols(x);
        case ResponseStep::revalidated: co_return co_await serve_cached(x, x.cu.entry, "REVALIDATED");
        case ResponseStep::refuse: break;
    }
    co_return co_await answer(x);
}

// A phase stopped the transaction: its page, or the redirect of a Continue link.
template <class Client, class Upstream>
net::awaitable<bool> HttpRelay<Client, Upstream>::answer(Exchange& x) {
    if (x.continue_link) co_return co_await continue_redirect(x);
    co_return co_await refuse(*x.refusal, x.version);
}

// The request phase, a decision without I/O: false (and x.refusal or x.continue_link set) when
// the transaction stops here.
template <class Client, class Upstream>
bool HttpRelay<Client, Upstream>::admit(Exchange& x) {
    auto& in = x.in;
    x.version = in.version() == 10 ? 10 : 11;
    if (sv_.audit.writer && !sv_.audit.writer->healthy() && sv_.wire.cfg.audit_fail_closed) {
        x.refusal = page_for(Failure{Fail::audit_unavailable,
                                     "the audit log cannot be written, so no request is served "
                                     "(audit.on_failure = fail-closed)",
                                     x.url});
        return false;
    }
    if (auto cont = take_continue_token(sv_.policy, x.target, client_ip_, x.origin.host)) {
        // The user chose "Continue" on a warn page: send the browser back to the clean URL.
        x.continue_link = *cont;
        x.url = full_url(x.scheme, x.origin, x.target);
        return false;
    }
    x.url = full_url(x.scheme, x.origin, x.target);
    x.rules = sv_.policy.rules.load();
    x.subject = inspect::Subject{x.origin.host, x.url, base_.user, split_groups(base_.group), client_ip_};
    x.verdict = x.rules->check_request(x.subject, header_list(in.base()));
    x.tx.verdict(x.verdict);
    if (!enforce(x)) return false;
    x.scan = !x.verdict.bypass;
    x.client_keep_alive = in.keep_alive() && !sv_.stopping;
    HopByHop hop(in.base());
    x.upgrade = hop.connection_has("upgrade") && in.count(http::field::upgrade) > 0;
    x.has_body = !x.parser.is_done();
    if (x.has_body && x.parser.chunked() &&
        first_chunk_line_bad({static_cast<const char*>(cbuf_.data().data()), cbuf_.size()})) {
        x.refusal = page_for(fail(sv_.wire.counters, Fail::bad_request,
                                  "a chunk-size line ends in a bare LF (HTTP/1.1 needs CRLF)", x.url));
        return false;
    }
    x.expect = std::string(in[http::field::expect]);
    if (!x.expect.empty() && !iequals(x.expect, "100-continue")) {
        x.refusal = page_for(Failure{Fail::bad_expect, "Vigil only supports \"Expect: 100-continue\"", x.origin.host_port()});
        return false;
    }
    return true;
}

// The head the origin gets: origin-form target, hop-by-hop fields removed, Host from the URL,
// Expect answered by Vigil, only codings Vigil can decode offered when the body is scanned.
template <class Client, class Upstream>
void HttpRelay<Client, Upstream>::build_origin_request(Exchange& x) {
    auto& in = x.in;
    auto& out = x.out;
    if (in.method() != http::verb::unknown) out.method(in.method());
    else out.method_string(in.method_string());
    out.target(x.target);
    out.version(11);
    HopByHop hop(in.base());
    for (const auto& f : in) {
        if (hop.contains(f.name_string()) || f.name() == http::field::host || f.name() == http::field::expect ||
            (x.scan && f.name() == http::field::accept_encoding))
            continue;
        if (f.name() == http::field::cookie && f.value().find("vigil_") != std::string_view::npos) {
            // Vigil's grants are for the gateway only; the rest of the field goes on.
            if (auto rest = without_grants(f.value()); !rest.empty()) out.insert(http::field::cookie, rest);
            continue;
        }
        out.insert(f.name_string(), f.value());
    }
    // What is scanned must be decodable: the origin is offered only the codings Vigil decodes
    // (a browser's zstd is not passed on), so another coding in a response is the origin's
    // choice and inspect.on_error's case.
    if (x.scan) {
        if (auto ae = decodable_codings(field_list(in.base(), http::field::accept_encoding)); !ae.empty())
            out.set(http::field::accept_encoding, ae);
    }
    out.set(http::field::host, host_header(x.origin, x.https()));
    if (connection_bound_auth(in[http::field::authorization])) origin_.mark_personal();
    origin_.require_http1(x.upgrade);
    if (x.upgrade) {
        out.set(http::field::upgrade, field_list(in.base(), http::field::upgrade));
        out.set(http::field::connection, "upgrade");
    }
    if (auto len = x.parser.content_length()) out.content_length(*len);
    else if (x.parser.chunked()) out.chunked(true);
    if (x.cu.entry) ask_revalidation(out, *x.cu.entry);
    x.request_time = epoch_seconds();
}

}  // namespace vigil::session

// HTTP fetches the gateway makes for itself — a missing intermediate from an AIA caIssuers
// URL, an OCSP responder's answer — on one thread of their own, never a worker's. Plain HTTP
// only (what AIA and OCSP use), bounded in size and time, connected the way the proxy's own
// requests are: the hosts file, the destination rules (no private addresses unless
// proxy.allow_private_destinations) and the parent proxies (upstream.parents).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <boost/asio/awaitable.hpp>

namespace vigil::upstream {

struct Connector;

struct FetchLimits {
    std::chrono::milliseconds timeout{5000};  // the whole fetch: connect (directly or through a parent), request, response
    size_t max_body = 64 * 1024;
};

struct FetchResult {
    bool ok = false;
    std::string body;
    std::string error;  // plain words when !ok
};

class Fetcher {
public:
    // `connector` outlives the fetcher (its hosts file, parents and counters are used).
    Fetcher(Connector& connector, FetchLimits limits);
    ~Fetcher();  // abandons fetches in flight (their callers get an error) and joins the thread
    Fetcher(const Fetcher&) = delete;
    Fetcher& operator=(const Fetcher&) = delete;

    // GET `url`, or POST `post_body` as `content_type` when it is not empty. Runs on the
    // fetcher's thread; the caller resumes on its own executor.
    boost::asio::awaitable<FetchResult> fetch(std::string url, std::string post_body = {}, std::string content_type = {});

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace vigil::upstream

// One audit record per transaction (or refused connection): collected over its life and
// submitted when the scope ends — on every path, including early returns and errors.
#pragma once

#include <chrono>

#include "audit/writer.hpp"
#include "core/txid.hpp"
#include "session/services.hpp"
#include "wire/messages.hpp"
#include "wire/pages.hpp"

namespace vigil::session {

class TxAudit {
public:
    TxAudit(AuditSink& sink, const audit::Record& base) : sink_(sink), rec_(base), start_(std::chrono::steady_clock::now()) {
        rec_.ts_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
        if (rec_.kind.empty()) rec_.kind = "transaction";
        if (rec_.txid.empty()) rec_.txid = core::new_transaction_id();
    }
    ~TxAudit() {
        if (cancelled_) return;
        if (body_in_flight_) {
            // The coroutine ended mid-body without saying how: the grace period after SIGTERM
            // ran out (the workers were destroyed) or an unexpected error ended the session.
            abort_transfer(sink_.stopping ? "shutdown" : "interrupted",
                           sink_.stopping ? "the transfer was cut at the end of the shutdown grace period"
                                        : "the session ended during the transfer");
        }
        if (rec_.action.empty()) rec_.action = rec_.status >= 500 ? "error" : "allow";
        sink_.labelled.add("decisions_total", {{"kind", rec_.kind}, {"action", rec_.action}, {"category", rec_.category}});
        // Rejections carry a bare code; "ok (...)" and "<codes> (accepted by ...)" were let through.
        if (!rec_.origin_cert.empty() && rec_.origin_cert != "ok" && rec_.origin_cert.find(' ') == std::string::npos)
            sink_.labelled.add("origin_cert_errors_total", {{"reason", rec_.origin_cert}});
        if (first_byte_ != std::chrono::steady_clock::time_point{})
            sink_.counters.latency.ttfb.observe(first_byte_ - start_);
        if (!sink_.writer) return;
        rec_.duration_ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start_).count();
        sink_.writer->submit(std::move(rec_));
    }
    TxAudit(const TxAudit&) = delete;
    TxAudit& operator=(const TxAudit&) = delete;

    audit::Record& rec() { return rec_; }
    void cancel() { cancelled_ = true; }

    // The response's first byte is being written now (kept: only the first call counts).
    void first_byte() {
        if (first_byte_ == std::chrono::steady_clock::time_point{}) first_byte_ = std::chrono::steady_clock::now();
    }
    std::chrono::steady_clock::time_point* first_byte_slot() { return &first_byte_; }

    void verdict(const inspect::Verdict& v) {
        if (!v.category.empty()) rec_.category = v.category;
        if (v.bypass) {
            rec_.action = "bypass";
        } else if (v.action != inspect::Action::allow || !v.rule.empty()) {
            rec_.action = inspect::action_name(v.action);
            rec_.rule = v.rule;
            rec_.reason = v.reason;
        }
        if (!v.monitored.empty() && rec_.rule.empty()) {
            rec_.action = "monitor";
            rec_.rule = v.monitored.front();
        }
    }

    // A body is being relayed: until body_done(), a record that ends now is an aborted transfer.
    void body_started() { body_in_flight_ = true; }
    void body_done() { body_in_flight_ = false; }

    // The transfer did not complete: action `aborted`, the reason code first (origin_reset,
    // origin_short_body, origin_timeout, client_gone, shutdown, ...); bytes_to_client says what
    // the client got. Counted once per transaction.
    void abort_transfer(const std::string& code, const std::string& detail) {
        body_in_flight_ = false;
        rec_.action = "aborted";
        rec_.reason = code + ": " + detail;
        count(sink_.counters.aborted_transfers);
        sink_.labelled.add("aborted_transfers_total", {{"reason", code}});
    }

    // Vigil answered with one of its pages.
    void page(const PageInfo& p) {
        rec_.status = p.status;
        rec_.action = p.action == PageAction::aborted ? "error" : action_name(p.action);
        if (!p.rule.empty()) rec_.rule = p.rule;
        if (!p.category.empty()) rec_.category = p.category;
        rec_.reason = p.code.empty() ? p.reason : p.code + ": " + p.reason;
    }

private:
    AuditSink& sink_;
    audit::Record rec_;
    std::chrono::steady_clock::time_point start_;
    std::chrono::steady_clock::time_point first_byte_{};
    bool cancelled_ = false;
    bool body_in_flight_ = false;
};

// Answers with one of Vigil's pages (the connection closes afterwards); with `tx`, the page is
// what the transaction's record says happened (status, action, reason, bytes).
template <class Stream>
net::awaitable<void> send_page(Stream& s, Context cx, PageInfo info, unsigned version, TxAudit* tx) {
    if (tx) {
        if (!info.conn_id) info.conn_id = tx->rec().conn_id;
        info.transaction = tx->rec().txid;
        tx->page(info);
        tx->first_byte();
    }
    const size_t n = co_await write_page(s, cx, info, version);
    if (tx) tx->rec().bytes_to_client += static_cast<int64_t>(n);
}

}  // namespace vigil::session

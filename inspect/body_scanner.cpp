// Streaming body scans: one body through the signatures of its target, chunk by chunk, decoded
// as it was sent (gzip, deflate, br), with an overlap so a match split across chunks is found.
#include "inspect/ruleset.hpp"
#include "inspect/set_match.hpp"

namespace vigil::inspect {

std::unique_ptr<BodyScanner> RuleSet::scan_body(Target target, std::string_view content_encoding) const {
    return std::make_unique<BodyScanner>(shared_from_this(), target, content_encoding);
}

BodyScanner::BodyScanner(std::shared_ptr<const RuleSet> rules, Target target, std::string_view encoding)
    : rules_(std::move(rules)), target_(target), decoder_(encoding, rules_->options().decode) {
    if (decoder_.supported()) return;
    // A coding Vigil cannot decode (unknown, or more than a few): the content cannot be
    // inspected, which is inspect.on_error's case, as a failing matcher is. Vigil asks origins
    // only for codings it decodes, so an origin that sends another one chose to.
    stopped_ = true;
    outcome_ = ScanOutcome::unscanned_encoding;
    Verdict v = matcher_error_verdict(rules_->options().error_block);
    v.rule = "unscannable-encoding";
    v.reason = "the body's Content-Encoding (" + std::string(encoding.substr(0, 64)) +
               ") cannot be decoded for inspection";
    verdict_.merge(v);
}

BodyScanner::~BodyScanner() = default;

const char* scan_outcome_name(ScanOutcome o) {
    switch (o) {
        case ScanOutcome::clean: return "clean";
        case ScanOutcome::matched: return "matched";
        case ScanOutcome::unscanned_oversize: return "unscanned-oversize";
        case ScanOutcome::unscanned_encoding: return "unscanned-encoding";
        case ScanOutcome::unscanned_budget: return "unscanned-budget";
        case ScanOutcome::error: return "error";
    }
    return "error";
}

void BodyScanner::stop_unscanned(ScanOutcome outcome, const std::string& reason) {
    stopped_ = true;
    outcome_ = outcome;
    if (rules_->options().oversize_block) {
        Verdict v;
        v.action = Action::block;
        v.rule = "oversize";
        v.rule_kind = "oversize";
        v.reason = reason + ", and unscanned content is blocked (inspect.oversize = block)";
        verdict_.merge(v);
    }
}

// Scanning took longer than inspect.scan_budget_ms: the rest is not inspected, which is
// inspect.on_error's case (a worker never stalls on one body, and nothing passes silently).
void BodyScanner::out_of_budget() {
    stopped_ = true;
    Verdict v = matcher_error_verdict(rules_->options().error_block);
    v.rule = "scan-budget";
    v.reason = "scanning this body took longer than its budget (inspect.scan_budget_ms = " +
               std::to_string(rules_->options().scan_budget.count()) + ")";
    verdict_.merge(v);
    outcome_ = ScanOutcome::unscanned_budget;
}

const Verdict& BodyScanner::feed(std::string_view wire) {
    if (stopped_ || verdict_.action == Action::block || wire.empty()) return verdict_;
    const auto started = std::chrono::steady_clock::now();
    const auto budget = rules_->options().scan_budget;
    const auto deadline = budget.count() > 0 ? started + budget - spent_ : std::chrono::steady_clock::time_point{};
    std::string_view fresh = wire;  // this chunk's decoded bytes (without an encoding: as they are)
    if (!decoder_.identity()) {
        auto st = decoder_.feed(wire, decoded_);
        if (st == DecodeChain::Status::corrupt) {
            stop_unscanned(ScanOutcome::unscanned_encoding, "the body's compressed data is corrupt");
            return verdict_;
        }
        if (st == DecodeChain::Status::bomb) {
            stop_unscanned(ScanOutcome::unscanned_oversize, "the body decompresses beyond the allowed ratio or size");
            return verdict_;
        }
        fresh = decoded_;
    }
    const size_t limit = rules_->options().scan_limit;
    bool over = false;
    if (scanned_ + fresh.size() > limit) {
        fresh = fresh.substr(0, limit - scanned_);
        over = true;
    }
    scanned_ += fresh.size();
    // The window is the tail of what came before plus the new bytes; a match must end in the
    // new bytes to be new.
    const size_t seen = tail_.size();
    std::string_view window = fresh;  // the first chunk is scanned where it is, not copied
    if (seen) {
        tail_.append(fresh);
        window = tail_;
    }
    Verdict before = verdict_;
    const MatchStatus status = rules_->match_signatures(target_, window, verdict_, seen, &known_, deadline);
    if (verdict_.action > before.action || verdict_.monitored.size() > before.monitored.size()) outcome_ = ScanOutcome::matched;
    if (verdict_.error) outcome_ = ScanOutcome::error;
    spent_ += std::chrono::steady_clock::now() - started;
    if (status == MatchStatus::out_of_time || (budget.count() > 0 && spent_ > budget)) {
        if (verdict_.action != Action::block) out_of_budget();
        return verdict_;
    }
    const size_t overlap = rules_->options().overlap;
    if (!seen) tail_.assign(fresh.substr(fresh.size() - std::min(fresh.size(), overlap)));
    else if (tail_.size() > overlap) tail_.erase(0, tail_.size() - overlap);
    if (over && verdict_.action != Action::block)
        stop_unscanned(ScanOutcome::unscanned_oversize, "the body is larger than the scan limit");
    return verdict_;
}

}  // namespace vigil::inspect

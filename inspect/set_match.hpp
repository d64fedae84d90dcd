// RE2::Set matching that never confuses "the matcher failed" with "nothing matched".
#pragma once

#include <string_view>
#include <vector>

#include <re2/set.h>

#include "inspect/verdict.hpp"

namespace vigil::inspect {

enum class SetMatch { matched, none, error };

// RE2::Set::Match returns false both for no match and for a failure (DFA out of memory, not
// compiled); the ErrorInfo tells them apart.
inline SetMatch match_set(const RE2::Set& set, std::string_view text, std::vector<int>* hits) {
    RE2::Set::ErrorInfo info{};
    if (set.Match(re2::StringPiece(text.data(), text.size()), hits, &info)) return SetMatch::matched;
    return info.kind == RE2::Set::kNoError ? SetMatch::none : SetMatch::error;
}

// The verdict for content that could not be inspected: block unless inspect.on_error = allow.
inline Verdict matcher_error_verdict(bool error_block) {
    Verdict e;
    e.error = true;
    e.rule_kind = "error";
    e.rule = "matcher-error";
    e.action = error_block ? Action::block : Action::monitor;
    e.reason = "the content could not be inspected (the signature matcher failed)";
    return e;
}

}  // namespace vigil::inspect

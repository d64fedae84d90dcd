// What the console shows, read from the gateway's files: the audit log (read-only), the rule
// database, the CA folder. Everything comes back as JSON values the pages render (escaped) and
// the charts read; nothing here writes but the rule changes, made through RuleDb with the
// signed-in administrator as the actor.
#pragma once

#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "audit/store.hpp"
#include "rules/db.hpp"

namespace vigil::console {

// Totals by action, per-hour series, top categories, blocked hosts and users, origin
// certificate errors by reason, cache hits over [since_ms, now_ms).
nlohmann::json overview(const audit::Store& store, int64_t since_ms, int64_t now_ms);

// The web form's filters (since, until, user, group, host, category, action, rule, status,
// txid, kind) as vigil-audit's. Throws audit::FilterError naming the field.
std::map<std::string, std::string> audit_filters(const std::map<std::string, std::string>& form);
// One page of records, newest first: {"rows": [...], "more": bool}.
nlohmann::json audit_page(const audit::Store& store, const std::map<std::string, std::string>& filters, int page,
                          int64_t now_ms);
// One record by row id, every field; null when there is none.
nlohmann::json audit_record(const audit::Store& store, int64_t id);
// Every matching record, oldest first, as "csv" or "jsonl".
std::string audit_export(const audit::Store& store, const std::map<std::string, std::string>& filters,
                         const std::string& format, int64_t now_ms);

// Categories with their host counts, policies in evaluation order, signature counts, recent
// history; `rules::RuleDb` is opened by the caller.
nlohmann::json rules_view(rules::RuleDb& db);
// The verdict for `url` as `user` (with `groups`, or the user's own), as vigil-rules test.
nlohmann::json rule_test(rules::RuleDb& db, const std::string& url, const std::string& user,
                         const std::vector<std::string>& groups);

// The CA folder: subject, issuer, validity, days left and fingerprints of the root and the
// issuing certificate.
nlohmann::json ca_view(const std::string& ca_dir);

}  // namespace vigil::console

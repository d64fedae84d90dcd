// The central audit trail: the JSON lines a collector (rsyslog) wrote from every gateway's
// shipped records (audit/ship.hpp), read back into an audit log of its own so that
// vigil-audit's queries and stats work on it, after dropping duplicates (the same hash twice:
// at-least-once delivery) and verifying every gateway's chain.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "audit/store.hpp"

namespace vigil::audit {

struct MergeReport {
    int64_t lines = 0, records = 0, duplicates = 0, unreadable = 0;
    std::map<std::string, int64_t> per_gateway;  // records kept, by gateway
    std::vector<std::string> problems;           // chain breaks, edits: one line each
    bool ok() const { return problems.empty(); }
};

// Reads `files` (JSON lines; text before the first '{' on a line is ignored) into a new
// temporary log, returned open for reading, its records in time order. Throws AuditError when
// a file cannot be read.
std::unique_ptr<Store> load_merged(const std::vector<std::string>& files, MergeReport& report);

}  // namespace vigil::audit

// Merging: parse, drop duplicate hashes, verify each gateway's chain in id order (the shipped
// rows carry the exact column text the hash was made of), then store every record.
#include "audit/merged.hpp"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "audit/record.hpp"
#include "audit/schema.hpp"

namespace vigil::audit {
namespace {

struct Row {
    int64_t id = 0;
    std::vector<std::string> values;
    std::string prev_hash, hash;
};

}  // namespace

std::unique_ptr<Store> load_merged(const std::vector<std::string>& files, MergeReport& report) {
    const auto& cols = record_columns();
    std::map<std::string, std::map<int64_t, Row>> gateways;
    std::set<std::string> seen;
    for (const auto& file : files) {
        std::ifstream in(file);
        if (!in) throw AuditError(file + ": cannot be read");
        for (std::string line; std::getline(in, line);) {
            ++report.lines;
            const auto brace = line.find('{');
            if (brace == std::string::npos) {
                ++report.unreadable;
                continue;
            }
            try {
                auto j = nlohmann::json::parse(line.substr(brace));
                Row r;
                r.id = j.at("id").get<int64_t>();
                for (const auto& c : cols) r.values.push_back(j.value(c, std::string()));
                r.prev_hash = j.at("prev_hash").get<std::string>();
                r.hash = j.at("hash").get<std::string>();
                if (!seen.insert(r.hash).second) {
                    ++report.duplicates;
                    continue;
                }
                gateways[j.value("gateway", std::string())][r.id] = std::move(r);
            } catch (const std::exception&) {
                ++report.unreadable;
            }
        }
    }
    // Each gateway's chain, in its own id order: every row follows the one before it.
    std::vector<const Row*> all;
    for (const auto& [gw, rows] : gateways) {
        std::string expected = kGenesisHash;
        int64_t last_id = 0;
        for (const auto& [id, r] : rows) {
            const bool checkpoint = r.values.size() > 2 && r.values[2] == "checkpoint";
            if (!checkpoint && r.prev_hash != expected)
                report.problems.push_back("gateway " + gw + ": row " + std::to_string(id) + " does not follow row " +
                                          std::to_string(last_id) + " (rows missing between them, or reordered)");
            else if (!checkpoint && chain_hash(r.prev_hash, r.values) != r.hash)
                report.problems.push_back("gateway " + gw + ": row " + std::to_string(id) +
                                          " does not match its hash (edited)");
            expected = r.hash;
            last_id = id;
            ++report.per_gateway[gw];
            all.push_back(&r);
        }
    }
    report.records = int64_t(all.size());
    std::stable_sort(all.begin(), all.end(), [](const Row* x, const Row* y) {
        return std::stoll(x->values[0].empty() ? "0" : x->values[0]) < std::stoll(y->values[0].empty() ? "0" : y->values[0]);
    });
    // A log of its own (removed once opened: the open connection keeps it), for the queries.
    char path[] = "/tmp/vigil-merged-XXXXXX";
    const int fd = ::mkstemp(path);
    if (fd < 0) throw AuditError("cannot create a temporary file for the merged log");
    ::close(fd);
    ::unlink(path);
    {
        auto out = Store::open(path, Store::Mode::create);
        std::string sql = "INSERT INTO records(" + schema::columns_list() + ", prev_hash, hash) VALUES (";
        for (size_t i = 0; i < cols.size() + 2; ++i) sql += i ? ", ?" : "?";
        sql += ")";
        core::sql::transaction(out->db(), "BEGIN IMMEDIATE", schema::database_error, [&] {
            schema::Stmt ins(out->db(), sql);
            for (const Row* r : all) {
                for (size_t i = 0; i < cols.size(); ++i) ins.bind(int(i + 1), r->values[i]);
                ins.bind(int(cols.size() + 1), r->prev_hash).bind(int(cols.size() + 2), r->hash).run();
            }
            core::sql::exec(out->db(), "DELETE FROM rollup;" + schema::rebuild_rollup_sql(""), schema::database_error);
        });
        // One file, no WAL: it can be unlinked while the reading connection keeps it.
        core::sql::exec(out->db(), "PRAGMA journal_mode = DELETE", schema::database_error);
    }
    auto store = Store::open(path, Store::Mode::read_only);
    std::error_code ec;
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(std::string(path) + suffix, ec);
    return store;
}

}  // namespace vigil::audit

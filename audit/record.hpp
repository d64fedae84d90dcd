// One audit record: what happened to one transaction, connection or system event, and its
// canonical form for the tamper-evident hash chain. Shared by the gateway and vigil-audit.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace vigil::audit {

struct Record {
    int64_t ts_ms = 0;        // when it started, ms since the epoch (UTC)
    int64_t duration_ms = 0;
    std::string kind;         // transaction, refused, splice, system
    uint64_t conn_id = 0;
    std::string client_ip;
    int client_port = 0;
    std::string user, group;
    std::string method, scheme, host;
    int port = 0;
    std::string url;
    int status = 0;
    int64_t bytes_from_client = 0, bytes_to_client = 0;
    std::string category, action, rule, reason;
    std::string tls_mode;     // bump, splice, plain
    std::string sni;
    std::string origin_cert;  // ok, or the verification error code
    std::string client_tls, origin_tls;  // "TLSv1.3 TLS_AES_256_GCM_SHA384"
    std::string user_agent, content_type;
    std::string scan_result;  // clean, matched, unscanned-oversize, unscanned-encoding, error, ""
    std::string cache;        // HIT, MISS, REVALIDATED; "" when the cache was not asked
    std::string txid;         // the transaction ID (core/txid.hpp), on the page and in X-Vigil-Transaction
};

// Column names in storage order (after id, before prev_hash and hash).
const std::vector<std::string>& record_columns();
// Whether column i (record_columns() order) holds an integer.
bool integer_column(size_t i);
// The record's fields as text, in record_columns() order.
std::vector<std::string> record_values(const Record& r);
Record record_from_values(const std::vector<std::string>& values);

constexpr size_t kColumnCount = 30;  // record_columns().size()
constexpr size_t kHashedSinceV1 = 28;  // later columns are hashed only when not empty

// The record's fields as text without copying them (the writer's path): text columns point
// into the record, integer columns are formatted into the view. Valid while the record lives.
class FieldView {
public:
    explicit FieldView(const Record& r);
    FieldView(const FieldView&) = delete;
    FieldView& operator=(const FieldView&) = delete;
    std::array<std::string_view, kColumnCount> text;
    std::array<int64_t, kColumnCount> number{};  // the integer columns' values

private:
    char digits_[kColumnCount][24];
};

// SHA-256 (hex) of prev_hash and the canonical form of the values: each field as
// "<length>:<bytes>\n" in column order, so no field can bleed into another.
std::string chain_hash(const std::string& prev_hash, const std::vector<std::string>& values);
// The same into `out` (its capacity reused), from a view.
void chain_hash(std::string_view prev_hash, const FieldView& values, std::string& out);
// The same from views of every column's text (verification reads them in place).
void chain_hash(std::string_view prev_hash, const std::array<std::string_view, kColumnCount>& values, std::string& out);
inline const std::string kGenesisHash(64, '0');

std::string to_json(int64_t id, const Record& r);

// Milliseconds since the epoch now, and as ISO 8601 UTC with milliseconds (2026-12-03T04:12:09.311Z).
int64_t epoch_ms();
std::string iso_time(int64_t ms);

}  // namespace vigil::audit

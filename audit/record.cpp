// Record fields, canonical hashing and JSON.
#include "audit/record.hpp"
#include "core/encoding.hpp"

#include <openssl/evp.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>

#include <nlohmann/json.hpp>

namespace vigil::audit {

const std::vector<std::string>& record_columns() {
    static const std::vector<std::string> c = {
        "ts_ms", "duration_ms", "kind", "conn_id", "client_ip", "client_port", "user", "grp", "method", "scheme",
        "host", "port", "url", "status", "bytes_from_client", "bytes_to_client", "category", "action", "rule",
        "reason", "tls_mode", "sni", "origin_cert", "client_tls", "origin_tls", "user_agent", "content_type",
        "scan_result", "cache", "txid"};
    return c;
}

bool integer_column(size_t i) {
    static const std::vector<bool> integer = [] {
        std::vector<bool> v;
        for (const auto& c : record_columns())
            v.push_back(c == "ts_ms" || c == "duration_ms" || c == "conn_id" || c == "client_port" || c == "port" ||
                        c == "status" || c == "bytes_from_client" || c == "bytes_to_client");
        return v;
    }();
    return i < integer.size() && integer[i];
}

std::vector<std::string> record_values(const Record& r) {
    const FieldView view(r);  // one place knows the field order
    return {view.text.begin(), view.text.end()};
}

Record record_from_values(const std::vector<std::string>& v) {
    auto num = [](const std::string& s) -> int64_t {
        try {
            return s.empty() ? 0 : std::stoll(s);
        } catch (const std::exception&) {
            return 0;
        }
    };
    Record r;
    size_t i = 0;
    r.ts_ms = num(v[i++]);
    r.duration_ms = num(v[i++]);
    r.kind = v[i++];
    r.conn_id = static_cast<uint64_t>(num(v[i++]));
    r.client_ip = v[i++];
    r.client_port = static_cast<int>(num(v[i++]));
    r.user = v[i++];
    r.group = v[i++];
    r.method = v[i++];
    r.scheme = v[i++];
    r.host = v[i++];
    r.port = static_cast<int>(num(v[i++]));
    r.url = v[i++];
    r.status = static_cast<int>(num(v[i++]));
    r.bytes_from_client = num(v[i++]);
    r.bytes_to_client = num(v[i++]);
    r.category = v[i++];
    r.action = v[i++];
    r.rule = v[i++];
    r.reason = v[i++];
    r.tls_mode = v[i++];
    r.sni = v[i++];
    r.origin_cert = v[i++];
    r.client_tls = v[i++];
    r.origin_tls = v[i++];
    r.user_agent = v[i++];
    r.content_type = v[i++];
    r.scan_result = v[i++];
    if (i < v.size()) r.cache = v[i++];
    if (i < v.size()) r.txid = v[i++];
    return r;
}

FieldView::FieldView(const Record& r) {
    const int64_t ints[] = {r.ts_ms, r.duration_ms, static_cast<int64_t>(r.conn_id), r.client_port, r.port,
                            r.status, r.bytes_from_client, r.bytes_to_client};
    const std::string* strs[] = {&r.kind, &r.client_ip, &r.user, &r.group, &r.method, &r.scheme, &r.host, &r.url,
                                 &r.category, &r.action, &r.rule, &r.reason, &r.tls_mode, &r.sni, &r.origin_cert,
                                 &r.client_tls, &r.origin_tls, &r.user_agent, &r.content_type, &r.scan_result,
                                 &r.cache, &r.txid};
    size_t next_int = 0, next_str = 0;
    for (size_t c = 0; c < kColumnCount; ++c) {
        if (integer_column(c)) {
            number[c] = ints[next_int++];
            char* end = std::to_chars(digits_[c], digits_[c] + sizeof digits_[c], number[c]).ptr;
            text[c] = std::string_view(digits_[c], static_cast<size_t>(end - digits_[c]));
        } else {
            text[c] = *strs[next_str++];
        }
    }
}

namespace {

template <class Values>
void hash_canonical(std::string_view prev_hash, const Values& values, std::string& out) {
    thread_local std::string canon;  // reused: the writer hashes every record
    canon.assign(prev_hash).push_back('\n');
    char field[24];
    size_t column = 0;
    for (const auto& v : values) {
        // Columns added after schema 2 count only when set, so older rows keep their hashes.
        if (column++ >= kHashedSinceV1 && v.empty()) continue;
        char* end = std::to_chars(field, field + sizeof field - 1, v.size()).ptr;
        *end++ = ':';
        canon.append(field, static_cast<size_t>(end - field));
        canon.append(v).push_back('\n');
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(canon.data(), canon.size(), md, &len, EVP_sha256(), nullptr);
    out = core::hex(md, len);
}

}  // namespace

std::string chain_hash(const std::string& prev_hash, const std::vector<std::string>& values) {
    std::string out;
    hash_canonical(prev_hash, values, out);
    return out;
}

void chain_hash(std::string_view prev_hash, const FieldView& values, std::string& out) {
    hash_canonical(prev_hash, values.text, out);
}

void chain_hash(std::string_view prev_hash, const std::array<std::string_view, kColumnCount>& values, std::string& out) {
    hash_canonical(prev_hash, values, out);
}

std::string to_json(int64_t id, const Record& r) {
    nlohmann::ordered_json j;
    if (id) j["id"] = id;
    const auto& cols = record_columns();
    auto vals = record_values(r);
    for (size_t i = 0; i < cols.size(); ++i) {
        const std::string& c = cols[i] == "grp" ? std::string("group") : cols[i];
        if (integer_column(i)) j[c] = std::stoll(vals[i]);
        else j[c] = vals[i];
    }
    return j.dump();
}

int64_t epoch_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string iso_time(int64_t ms) {
    std::time_t secs = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[40];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    char out[48];
    std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(ms % 1000));
    return out;
}

}  // namespace vigil::audit

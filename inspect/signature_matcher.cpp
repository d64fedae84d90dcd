#include "inspect/signature_matcher.hpp"

#include <hs/hs.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "core/encoding.hpp"

namespace vigil::inspect {

struct SignatureMatcher::Database {
    hs_database_t* db = nullptr;
    uint64_t generation = 0;  // names the database in the threads' scratch lists
    ~Database() { hs_free_database(db); }
};

namespace {

// Each signature is reported once per buffer, at the first place it may end: a signature that
// matches everywhere (`\s`, `.`) costs one report, not one per byte.
constexpr unsigned kFlags = HS_FLAG_PREFILTER | HS_FLAG_ALLOWEMPTY | HS_FLAG_SINGLEMATCH;
constexpr size_t kNear = 256;

std::atomic<uint64_t> g_generation{1};

// Hyperscan folds case for ASCII only; RE2 (Latin-1) folds é and É too. A case-insensitive
// pattern with bytes above 0x7F, or escapes that name them, stays with RE2, which matches it
// exactly; so do Unicode classes and `\C`. Without case folding a byte is a byte to both.
// Conservative: a false "stays" costs speed, never a miss.
bool folds_case(const std::string& p) {
    for (size_t at = p.find("(?"); at != std::string::npos; at = p.find("(?", at + 2)) {
        for (size_t i = at + 2; i < p.size() && p[i] != ')' && p[i] != ':'; ++i)
            if (p[i] == 'i') return true;
    }
    return false;
}

bool hyperscan_can_take(const std::string& p) {
    const bool fold = folds_case(p);
    for (size_t i = 0; i < p.size(); ++i) {
        const unsigned char c = static_cast<unsigned char>(p[i]);
        if (c >= 0x80 && fold) return false;
        if (c != '\\' || i + 1 >= p.size()) continue;
        const char e = p[++i];
        if (e == 'p' || e == 'P' || e == 'C') return false;
        if (!fold) continue;
        const char h = i + 1 < p.size() ? static_cast<char>(std::tolower(static_cast<unsigned char>(p[i + 1]))) : 0;
        if (e == 'x' && (h == '{' || h == '8' || h == '9' || (h >= 'a' && h <= 'f'))) return false;
        if (e >= '2' && e <= '7' && i + 2 < p.size()) return false;  // octal \200..\377
    }
    return true;
}

// A thread's scratch space, grown for each database it scans with; freed when the thread ends.
// `hs_alloc_scratch` checks the database's CRC over all of its bytecode on every call, so it is
// called once per database and thread, not per scan: a thread scans with several databases in
// turn (one per target), and calling it whenever the database changed was a fifth of a
// keep-alive request's CPU. The scratch only grows, so it stays valid for every database it
// was sized for; the list forgets old generations once it is long (a reload's leftovers).
struct Scratch {
    hs_scratch_t* space = nullptr;
    std::vector<uint64_t> sized_for;
    bool ready_for(uint64_t generation) const {
        return std::find(sized_for.begin(), sized_for.end(), generation) != sized_for.end();
    }
    void remember(uint64_t generation) {
        if (sized_for.size() >= 32) sized_for.clear();
        sized_for.push_back(generation);
    }
    ~Scratch() { hs_free_scratch(space); }
};
thread_local Scratch t_scratch;

struct Context {
    const SignatureMatcher* m;
    std::string_view buf;
    size_t seen;
    SignatureMatcher::Scan* out;
    const SignatureMatcher::Hooks* hooks;
    const std::vector<bool>* known;
    std::chrono::steady_clock::time_point deadline;
};

// A match of `re` starting at or after `lo` that `accept` takes (the whole buffer is the context
// for ^, $ and \b). RE2 stops at the first one.
bool confirm(const Context& c, int id, size_t lo) {
    const RE2& re = c.m->re2(id);
    const re2::StringPiece text(c.buf.data(), c.buf.size());
    const size_t hi = text.size();
    if (!c.hooks || !c.hooks->accept || !c.hooks->validated[static_cast<size_t>(id)])
        return re.Match(text, lo, hi, RE2::UNANCHORED, nullptr, 0);
    re2::StringPiece m;
    for (size_t pos = lo; pos <= hi && re.Match(text, pos, hi, RE2::UNANCHORED, &m, 1);) {
        if (c.hooks->accept(c.hooks->ctx, id, std::string_view(m.data(), m.size()))) return true;
        pos = static_cast<size_t>(m.data() - text.data()) + std::max<size_t>(m.size(), 1);
    }
    return false;
}

bool past(std::chrono::steady_clock::time_point deadline) {
    return deadline != std::chrono::steady_clock::time_point{} && std::chrono::steady_clock::now() > deadline;
}

// Hyperscan's one report for a signature: the first place a match may end (its prefilter
// accepts a superset of RE2's matches, so no real match ends earlier). RE2 then looks for the
// first real one that ends in the new bytes: from that place less the signature's longest
// match when bounded, from the start of the buffer when not.
int on_match(unsigned id_u, unsigned long long, unsigned long long to, unsigned, void* ctx_v) {
    auto& c = *static_cast<Context*>(ctx_v);
    if (past(c.deadline)) {
        c.out->out_of_time = true;
        return 1;
    }
    const int id = static_cast<int>(id_u);
    if (c.known && (*c.known)[static_cast<size_t>(id)]) return 0;  // matched earlier in this body
    const size_t first_end = std::max<size_t>(static_cast<size_t>(to), c.seen ? c.seen + 1 : 0);
    const unsigned width = c.m->max_width(id);
    bool found;
    if (width != UINT_MAX && width < first_end) {
        found = confirm(c, id, first_end - width);
    } else {
        // Unbounded: most real matches are short and end near the place, so RE2 first looks
        // from a little before it; only when that finds nothing does it start at the beginning.
        found = first_end > kNear && confirm(c, id, first_end - kNear);
        if (!found) found = confirm(c, id, 0);
    }
    if (!found) return 0;
    c.out->hits.push_back(id);
    return c.hooks && c.hooks->stop[static_cast<size_t>(id)] ? 1 : 0;
}

// The cache entry's name: what makes the compiled database what it is.
std::string cache_key(const std::vector<std::string>& patterns) {
    hs_platform_info_t platform{};
    hs_populate_platform(&platform);
    std::string text = "vigil-signatures-1 " + std::string(hs_version()) + " " + std::to_string(platform.tune) + " " +
                       std::to_string(platform.cpu_features) + " " + std::to_string(kFlags) + "\n";
    for (const auto& p : patterns) text.append(p).push_back('\0');
    return core::sha256_hex(text);
}

}  // namespace

SignatureMatcher::SignatureMatcher(const std::vector<std::string>& patterns, const Options& opts) {
    RE2::Options o;
    o.set_log_errors(false);
    o.set_encoding(RE2::Options::EncodingLatin1);  // bodies are bytes, not necessarily UTF-8
    o.set_max_mem(opts.re2_max_mem);
    for (size_t i = 0; i < patterns.size(); ++i) {
        auto re = std::make_unique<RE2>(patterns[i], o);
        if (!re->ok()) throw std::invalid_argument(std::to_string(i) + ": " + re->error());
        res_.push_back(std::move(re));
    }
    std::string key;
    if (opts.cache) {
        key = cache_key(patterns);
        if (auto data = opts.cache->load(key); data && load(*data)) return;
    }
    width_.assign(patterns.size(), UINT_MAX);
    std::vector<int> prefiltered;
    for (size_t i = 0; i < patterns.size(); ++i) {
        hs_expr_info_t* info = nullptr;
        hs_compile_error_t* err = nullptr;
        if (hyperscan_can_take(patterns[i]) &&
            hs_expression_info(patterns[i].c_str(), kFlags, &info, &err) == HS_SUCCESS) {
            width_[i] = info->max_width;
            std::free(info);
            prefiltered.push_back(static_cast<int>(i));
        } else {
            hs_free_compile_error(err);
            re2_only_.push_back(static_cast<int>(i));
        }
    }
    compile(patterns, std::move(prefiltered));
    if (opts.cache) opts.cache->store(key, save());
}

// One database for all the signatures Hyperscan takes; one it refuses at this stage (a resource
// limit for that pattern) goes to RE2 alone and the rest is compiled again.
void SignatureMatcher::compile(const std::vector<std::string>& patterns, std::vector<int> prefiltered) {
    while (!prefiltered.empty()) {
        std::vector<const char*> exprs;
        std::vector<unsigned> flags(prefiltered.size(), kFlags), ids;
        for (int id : prefiltered) {
            exprs.push_back(patterns[static_cast<size_t>(id)].c_str());
            ids.push_back(static_cast<unsigned>(id));
        }
        hs_database_t* db = nullptr;
        hs_compile_error_t* err = nullptr;
        if (hs_compile_multi(exprs.data(), flags.data(), ids.data(), static_cast<unsigned>(exprs.size()), HS_MODE_BLOCK,
                             nullptr, &db, &err) == HS_SUCCESS) {
            db_ = std::make_unique<Database>();
            db_->db = db;
            db_->generation = g_generation.fetch_add(1);
            break;
        }
        const int bad = err ? err->expression : -1;
        const std::string message = err && err->message ? err->message : "unknown error";
        hs_free_compile_error(err);
        if (bad < 0 || static_cast<size_t>(bad) >= prefiltered.size())
            throw std::runtime_error("Hyperscan cannot compile the signatures together: " + message);
        re2_only_.push_back(prefiltered[static_cast<size_t>(bad)]);
        prefiltered.erase(prefiltered.begin() + bad);
    }
    std::sort(re2_only_.begin(), re2_only_.end());
}

// The cached form: "VSM1", the widths, the RE2-only ids, then Hyperscan's serialized database.
std::string SignatureMatcher::save() const {
    std::string out = "VSM1";
    auto put = [&](uint32_t v) { out.append(reinterpret_cast<const char*>(&v), sizeof v); };
    put(static_cast<uint32_t>(width_.size()));
    for (unsigned w : width_) put(w);
    put(static_cast<uint32_t>(re2_only_.size()));
    for (int id : re2_only_) put(static_cast<uint32_t>(id));
    if (db_) {
        char* bytes = nullptr;
        size_t length = 0;
        if (hs_serialize_database(db_->db, &bytes, &length) != HS_SUCCESS) return "";
        out.append(bytes, length);
        std::free(bytes);
    }
    return out;
}

bool SignatureMatcher::load(const std::string& data) {
    size_t at = 4;
    auto get = [&](uint32_t& v) {
        if (at + sizeof v > data.size()) return false;
        std::memcpy(&v, data.data() + at, sizeof v);
        at += sizeof v;
        return true;
    };
    uint32_t n = 0, m = 0;
    if (data.compare(0, 4, "VSM1") != 0 || !get(n) || n != res_.size()) return false;
    std::vector<unsigned> widths(n);
    for (auto& w : widths)
        if (!get(w)) return false;
    if (!get(m) || m > n) return false;
    std::vector<int> only(m);
    for (auto& id : only) {
        uint32_t v = 0;
        if (!get(v) || v >= n) return false;
        id = static_cast<int>(v);
    }
    std::unique_ptr<Database> db;
    if (m < n) {
        hs_database_t* raw = nullptr;
        if (hs_deserialize_database(data.data() + at, data.size() - at, &raw) != HS_SUCCESS) return false;
        db = std::make_unique<Database>();
        db->db = raw;
        db->generation = g_generation.fetch_add(1);
    }
    width_ = std::move(widths);
    re2_only_ = std::move(only);
    db_ = std::move(db);
    return true;
}

SignatureMatcher::~SignatureMatcher() = default;

void SignatureMatcher::scan(std::string_view buffer, size_t seen, Scan& out, const Hooks* hooks,
                            const std::vector<bool>* known, std::chrono::steady_clock::time_point deadline) const {
    out.hits.clear();
    out.error = out.out_of_time = false;
    if (res_.empty() || (seen && buffer.size() <= seen)) return;
    Context c{this, buffer, seen, &out, hooks, known, deadline};
    bool stopped = false;
    if (db_) {
        if (!t_scratch.ready_for(db_->generation)) {
            if (hs_alloc_scratch(db_->db, &t_scratch.space) != HS_SUCCESS) {
                out.error = true;
                return;
            }
            t_scratch.remember(db_->generation);
        }
        // Hyperscan refuses a null pointer even for no bytes.
        const char* bytes = buffer.empty() ? "" : buffer.data();
        const hs_error_t rc =
            hs_scan(db_->db, bytes, static_cast<unsigned>(buffer.size()), 0, t_scratch.space, on_match, &c);
        if (rc == HS_SCAN_TERMINATED) stopped = true;
        else if (rc != HS_SUCCESS) out.error = true;
    }
    for (int id : re2_only_) {
        if (stopped || out.error) break;
        if (known && (*known)[static_cast<size_t>(id)]) continue;
        if (past(deadline)) {
            out.out_of_time = true;
            break;
        }
        if (!confirm(c, id, 0)) continue;
        out.hits.push_back(id);
        stopped = hooks && hooks->stop[static_cast<size_t>(id)];
    }
    std::sort(out.hits.begin(), out.hits.end());
}

}  // namespace vigil::inspect

// The rule reloader (gateway/reloader.hpp).
#include "gateway/reloader.hpp"

#include <pthread.h>
#include <sys/stat.h>

#include <fstream>

#include <openssl/evp.h>

#include "core/encoding.hpp"
#include "inspect/compiled_cache.hpp"
#include "rules/db.hpp"

namespace vigil::gateway {
namespace {

using audit::epoch_ms;

// SHA-256 of a file's bytes ("" when it cannot be read): a change that keeps the size and the
// modification time (a block rewritten in place, a copy with its times preserved) still shows.
std::string file_digest(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return "";
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
    std::vector<char> chunk(1 << 16);
    while (in.read(chunk.data(), static_cast<std::streamsize>(chunk.size())) || in.gcount() > 0)
        EVP_DigestUpdate(ctx.get(), chunk.data(), static_cast<size_t>(in.gcount()));
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_DigestFinal_ex(ctx.get(), md, &len);
    return core::hex(md, len);
}

// The rule database's bytes and those of its WAL (rule databases are a few MiB: hashing them
// every poll costs milliseconds, on the reloader's thread).
std::string rules_bytes(const Config& cfg) {
    return file_digest(cfg.rules_path) + ":" + file_digest(cfg.rules_path + "-wal");
}

// Identifies a rule database state: its version, the file itself (a replaced file counts) and
// its bytes (rules_bytes).
std::string rules_stamp(const Config& cfg, int64_t version, const std::string& bytes) {
    struct stat st {};
    ::stat(cfg.rules_path.c_str(), &st);
    return std::to_string(version) + ":" + std::to_string(st.st_ino) + ":" + std::to_string(st.st_dev) + ":" + bytes;
}

}  // namespace

inspect::InspectOptions inspect_options(const Config& cfg) {
    inspect::InspectOptions o;
    o.re2_max_mem = cfg.re2_max_mem;
    o.scan_limit = cfg.scan_limit;
    o.oversize_block = cfg.oversize_block;
    o.error_block = cfg.error_block;
    o.scan_budget = cfg.scan_budget;
    return o;
}

// Compiled signature databases that vigil-rules stored with the rules are loaded, not compiled
// again (seconds for thousands of signatures); the gateway opens the rules read-only and so
// never writes them.
std::shared_ptr<const inspect::RuleSet> compile_rules(const rules::RuleData& data, rules::RuleDb& db, const Config& cfg) {
    const inspect::RuleDbCache cache(db, false);
    auto o = inspect_options(cfg);
    o.compiled = &cache;
    return inspect::RuleSet::compile(data, o);
}

std::shared_ptr<const inspect::RuleSet> load_rules(const Config& cfg, std::string* stamp) {
    if (cfg.rules_path.empty()) return inspect::RuleSet::empty(inspect_options(cfg));
    if (!cfg.rules_source.empty()) {
        // Fed by rules.source: the database is the gateway's own; the first bundle fills it
        // (until then it is empty and /readyz says "no ruleset loaded yet").
        if (cfg.rules_source_key.empty()) throw config::ConfigError("rules.source needs rules.source_key (vigil-rules publish prints it)");
        rules::RuleDb::open(cfg.rules_path, rules::RuleDb::Mode::create);
    }
    auto db = rules::RuleDb::open(cfg.rules_path, rules::RuleDb::Mode::read_only);
    auto data = db->load();
    if (stamp) *stamp = rules_stamp(cfg, data.version, rules_bytes(cfg));
    return compile_rules(data, *db, cfg);
}

RuleReloader::RuleReloader(ReloadTargets targets, std::string stamp) : t_(targets), stamp_(std::move(stamp)) {
    thread_ = std::thread([this] {
        pthread_setname_np(pthread_self(), "vigil-rules");
        run();
    });
}

RuleReloader::~RuleReloader() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void RuleReloader::poke() {
    {
        std::lock_guard lock(mu_);
        poked_ = true;
    }
    cv_.notify_all();
}

void RuleReloader::run() {
    std::unique_lock lock(mu_);
    for (;;) {
        cv_.wait_for(lock, t_.cfg.reload_interval, [this] { return stop_ || poked_; });
        if (stop_) return;
        bool forced = poked_;
        poked_ = false;
        lock.unlock();
        if (!t_.cfg.rules_path.empty()) check(forced);
        if (forced) check_ca();
        lock.lock();
    }
}

void RuleReloader::check(bool forced) {
    // The bytes first: a corrupted file may not even open, and must still count as a change.
    const std::string bytes = rules_bytes(t_.cfg);
    if (bytes == bytes_ && !forced) return;
    try {
        auto db = rules::RuleDb::open(t_.cfg.rules_path, rules::RuleDb::Mode::read_only);
        std::string stamp = rules_stamp(t_.cfg, db->version(), bytes);
        if (stamp == stamp_ && !forced) {
            bytes_ = bytes;  // back to what is in force (a broken file put right again)
            t_.health.failing = false;
            return;
        }
        auto data = db->load();
        auto fresh = compile_rules(data, *db, t_.cfg);
        int64_t old = t_.rules.load()->version();
        t_.rules.store(fresh);
        stamp_ = rules_stamp(t_.cfg, data.version, bytes);
        bytes_ = bytes;
        t_.health.failing = false;
        t_.health.last_success_ms = epoch_ms();
        count(t_.counters.ruleset_reloads);
        audit_event(t_.audit, "ruleset", "ruleset version " + std::to_string(old) + " -> " + std::to_string(fresh->version()));
        log_info("ruleset " + std::to_string(old) + " -> " + std::to_string(fresh->version()) + " (" +
                 std::to_string(fresh->signature_count()) + " signatures, " + std::to_string(fresh->host_count()) +
                 " host entries)");
    } catch (const std::exception& e) {
        // Said once per state of the file, not at every poll; SIGHUP says it again.
        bytes_ = bytes;
        count(t_.counters.ruleset_reload_failed);
        t_.health.failing = true;
        {
            std::lock_guard lock(t_.health.mu);
            t_.health.error = e.what();
        }
        log_error(std::string("rule reload failed, the previous ruleset stays in force: ") + e.what());
        audit_event(t_.audit, "ruleset-failed", e.what());
    }
}

// SIGHUP: a rotated issuing CA (vigil-ca rotate / install-issuing) is loaded and swapped in;
// connections already bumped keep the certificate they have.
void RuleReloader::check_ca() {
    try {
        auto current = t_.material.load();
        auto fresh = load_tls_material(t_.cfg, t_.counters);
        if (fresh->issuer_fingerprint == current->issuer_fingerprint) return;
        t_.material.store(fresh);
        log_info("issuing CA replaced: now " + tls::subject_text(fresh->ca->issuer.get()) + " (SHA-256 " +
                 fresh->issuer_fingerprint + ")");
        audit_event(t_.audit, "ca", "issuing CA replaced: " + current->issuer_fingerprint + " -> " + fresh->issuer_fingerprint);
    } catch (const std::exception& e) {
        log_error(std::string("CA reload failed, the current CA stays in use: ") + e.what());
        audit_event(t_.audit, "ca-failed", e.what());
    }
}

ConfigRecheck::ConfigRecheck(std::string path, config::Overrides overrides)
    : path_(std::move(path)), overrides_(std::move(overrides)) {
    try {
        running_ = config::key_values(path_, overrides_);
    } catch (const config::ConfigError&) {
        // Loaded a moment ago by load_config: only a file changed since then lands here.
    }
}

void ConfigRecheck::on_hup() {
    if (path_.empty()) return;
    std::map<std::string, std::string> now;
    Config fresh;
    try {
        fresh = config::load_config(path_, overrides_);
        now = config::key_values(path_, overrides_);
    } catch (const config::ConfigError& e) {
        const std::string what = e.what();
        log_error("configuration " + path_ + " not applied, the running configuration stays: " +
                  what.substr(0, what.find('\n')));
        return;
    }
    std::string applied, pending;
    auto changed = [&](const std::string& key) {
        if (config::applies_live(key)) {
            applied += (applied.empty() ? "" : ", ") + key;
            if (now.count(key)) running_[key] = now[key];
            else running_.erase(key);
        } else {
            pending += (pending.empty() ? "" : ", ") + key;
        }
    };
    for (const auto& [key, value] : now)
        if (auto it = running_.find(key); it == running_.end() || it->second != value) changed(key);
    for (const auto& [key, value] : std::map<std::string, std::string>(running_))
        if (!now.count(key)) changed(key);
    set_log_level(fresh.log_level);
    set_log_json(fresh.log_json);
    if (applied.empty() && pending.empty()) log_info("configuration " + path_ + " re-read: unchanged");
    if (!applied.empty()) log_info("configuration " + path_ + " re-read: applied " + applied);
    if (!pending.empty())
        log_warn("configuration " + path_ + " re-read: " + pending +
                 " changed and take effect at the next restart (systemctl restart vigil); the running values stay");
}

}  // namespace vigil::gateway

// The HTTP cache's store: the index in memory, bodies in memory and on disk, and the writer
// thread (the file format is in entry_file.cpp, the rules in freshness.cpp).
#include "cache/store.hpp"

#include <openssl/evp.h>
#include <zlib.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <pthread.h>
#include <sys/stat.h>

#include "core/log.hpp"

namespace vigil::cache {

namespace fs = std::filesystem;

Store::Store(Options o, Counters& counters) : o_(std::move(o)), counters_(counters) {
    if (!o_.dir.empty()) {
        load_index();
        writer_ = std::thread([this] {
            pthread_setname_np(pthread_self(), "vigil-cache");
            run_writer();
        });
    }
}

Store::~Store() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    wake_.notify_all();
    if (writer_.joinable()) writer_.join();
}

std::string Store::path(const std::string& id) const { return o_.dir + "/" + id + ".entry"; }

void Store::load_index() {
    std::error_code ec;
    fs::create_directories(o_.dir, ec);
    if (ec) {
        log_error("cache: cannot create " + o_.dir + ": " + ec.message() + " (responses will not be stored until it can)");
        return;
    }
    fs::permissions(o_.dir, fs::perms::owner_all, fs::perm_options::replace, ec);  // bumped HTTPS bodies: owner only
    size_t loaded = 0, discarded = 0;
    for (fs::directory_iterator it(o_.dir, ec), end; !ec && it != end; it.increment(ec)) {
        const auto& p = it->path();
        if (p.extension() == ".tmp") {
            fs::remove(p, ec);  // a write cut short by a crash
            continue;
        }
        if (p.extension() != ".entry") continue;
        std::error_code sec;
        const uint64_t size = it->file_size(sec);
        std::ifstream in(p, std::ios::binary);
        std::string head(std::min<uint64_t>(size, 1 << 20), '\0');
        in.read(head.data(), static_cast<std::streamsize>(head.size()));
        head.resize(static_cast<size_t>(in.gcount()));
        // Parse the header only; the body's checksum is checked when it is first read.
        std::optional<Entry> e;
        auto nl = head.find('\n', kMagic.size());
        size_t hlen = 0;
        if (nl != std::string::npos &&
            std::from_chars(head.data() + kMagic.size(), head.data() + nl, hlen).ptr == head.data() + nl &&
            nl + 1 + hlen <= head.size()) {
            e = parse(std::string_view(head).substr(0, nl + 1 + hlen), false);
            if (e && (size != nl + 1 + hlen + e->body_size + 8 || e->id + ".entry" != p.filename().string())) e.reset();
        }
        if (!e || e->body_size > o_.max_object_bytes) {
            ++discarded;
            count(counters_.cache_corrupt);
            fs::remove(p, sec);
            continue;
        }
        insert_locked(std::make_shared<const Entry>(std::move(*e)), size);
        ++loaded;
    }
    if (ec) log_error("cache: cannot read " + o_.dir + ": " + ec.message());
    trim_locked();
    log_info("cache: " + std::to_string(loaded) + " stored responses in " + o_.dir +
             (discarded ? " (" + std::to_string(discarded) + " unreadable files discarded)" : ""));
}

void Store::insert_locked(std::shared_ptr<const Entry> e, uint64_t file_bytes) {
    const std::string id = e->id;
    auto it = slots_.find(id);
    if (it != slots_.end()) erase_locked(id, false);  // the file is overwritten, not removed
    lru_.push_front(id);
    if (e->body) memory_bytes_ += e->body_size;
    disk_bytes_ += file_bytes;
    auto& ids = by_url_[e->url];
    ids.push_back(id);
    slots_[id] = Slot{std::move(e), lru_.begin(), file_bytes};
}

// `id` by value: callers pass the LRU list element that is erased here.
void Store::erase_locked(std::string id, bool remove_file) {
    auto it = slots_.find(id);
    if (it == slots_.end()) return;
    const auto& e = *it->second.entry;
    if (e.body) memory_bytes_ -= e.body_size;
    disk_bytes_ -= it->second.file_bytes;
    auto u = by_url_.find(e.url);
    if (u != by_url_.end()) {
        std::erase(u->second, id);
        if (u->second.empty()) by_url_.erase(u);
    }
    lru_.erase(it->second.lru);
    slots_.erase(it);
    if (remove_file && !o_.dir.empty()) {
        jobs_.push_back(Job{false, id, nullptr});
        wake_.notify_one();
    }
}

void Store::trim_locked() {
    const bool disk = !o_.dir.empty();
    // Bodies held in memory: the least recently used ones that are on disk are let go; in a
    // memory-only cache (or one whose file is not written yet) the entry goes.
    for (auto it = lru_.end(); memory_bytes_ > o_.memory_bytes && it != lru_.begin();) {
        --it;
        auto& slot = slots_.at(*it);
        if (!slot.entry->body) continue;
        if (disk && slot.file_bytes) {
            auto copy = std::make_shared<Entry>(*slot.entry);
            copy->body.reset();
            memory_bytes_ -= copy->body_size;
            slot.entry = std::move(copy);
        } else if (!disk) {
            const std::string id = *it++;
            erase_locked(id, false);
            count(counters_.cache_evicted);
        }
    }
    while (disk && disk_bytes_ > o_.max_bytes && !lru_.empty()) {
        erase_locked(lru_.back(), true);
        count(counters_.cache_evicted);
    }
}

void Store::queue_write(const std::shared_ptr<const Entry>& e) {
    if (o_.dir.empty()) return;
    jobs_.push_back(Job{true, e->id, e});  // serialised on the writer thread, outside the lock
    wake_.notify_one();
}

void Store::run_writer() {
    std::unique_lock lock(mu_);
    for (;;) {
        wake_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
        if (jobs_.empty()) return;  // stopping, and every queued job done
        Job job = std::move(jobs_.front());
        jobs_.pop_front();
        ++jobs_running_;
        lock.unlock();
        std::string error;
        const std::string final_path = path(job.id);
        const std::string bytes = job.write && job.entry->body ? serialize(*job.entry) : std::string();
        if (job.write && !job.entry->body) {
            error = "internal: no body to write for " + job.entry->url;
        } else if (job.write) {
            const std::string tmp = final_path + ".tmp";
            std::FILE* f = std::fopen(tmp.c_str(), "wb");
            if (!f) {
                error = std::string("cannot create ") + tmp + ": " + std::strerror(errno);
            } else {
                ::fchmod(fileno(f), 0600);
                const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
                const int werr = errno;
                const bool closed = std::fclose(f) == 0;
                if (!ok || !closed) {
                    error = std::string("cannot write ") + tmp + ": " + std::strerror(ok ? errno : werr);
                    std::remove(tmp.c_str());
                } else if (std::rename(tmp.c_str(), final_path.c_str()) != 0) {
                    error = std::string("cannot rename ") + tmp + ": " + std::strerror(errno);
                    std::remove(tmp.c_str());
                }
            }
        } else {
            std::error_code ec;
            fs::remove(final_path, ec);
        }
        lock.lock();
        --jobs_running_;
        if (job.write) {
            auto it = slots_.find(job.id);
            const bool current = it != slots_.end() && it->second.entry == job.entry;
            if (!error.empty()) {
                // Pass-through: the response is not kept (a later request fetches it again).
                count(counters_.cache_store_errors);
                if (write_errors_++ % 1000 == 0)
                    log_error("cache: " + error + " — not storing responses while this lasts (" +
                              std::to_string(write_errors_) + " failed so far)");
                if (current) erase_locked(job.id, false);
            } else if (current) {
                it->second.file_bytes = bytes.size();
                disk_bytes_ += bytes.size();
                trim_locked();
            } else if (it == slots_.end() && std::none_of(jobs_.begin(), jobs_.end(), [&](const Job& j) {
                           return j.id == job.id;
                       })) {
                // Removed while it was being written: the file must not outlive the entry.
                jobs_.push_back(Job{false, job.id, nullptr});
            }
        }
        if (jobs_.empty() && jobs_running_ == 0) idle_.notify_all();
    }
}

void Store::flush() {
    std::unique_lock lock(mu_);
    idle_.wait(lock, [&] { return (jobs_.empty() && jobs_running_ == 0) || o_.dir.empty(); });
}

std::shared_ptr<const std::string> Store::read_body(const Entry& e, std::string& error) const {
    std::ifstream in(path(e.id), std::ios::binary);
    if (!in) {
        error = "cannot open " + path(e.id);
        return nullptr;
    }
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto parsed = parse(bytes, true);
    if (!parsed || parsed->url != e.url || parsed->body_size != e.body_size) {
        error = "checksum or format error in " + path(e.id);
        return nullptr;
    }
    return parsed->body;
}

std::shared_ptr<const Entry> Store::find(const std::string& url, const Fields& request) {
    auto found = find_indexed(url, request);
    return found && !found->body ? load_body(found) : found;
}

std::shared_ptr<const Entry> Store::find_indexed(const std::string& url, const Fields& request) {
    std::lock_guard lock(mu_);
    auto u = by_url_.find(url);
    if (u == by_url_.end()) return nullptr;
    for (const auto& id : u->second) {
        auto& slot = slots_.at(id);
        auto want = vary_values(slot.entry->headers, request);
        if (!want || *want != slot.entry->vary) continue;
        lru_.splice(lru_.begin(), lru_, slot.lru);
        return slot.entry;
    }
    return nullptr;
}

std::shared_ptr<const Entry> Store::load_body(const std::shared_ptr<const Entry>& found) {
    const std::string& url = found->url;
    // Read outside the lock (the other workers keep using the index meanwhile).
    std::string error;
    auto body = read_body(*found, error);
    std::lock_guard lock(mu_);
    auto it = slots_.find(found->id);
    const bool current = it != slots_.end() && it->second.entry == found;
    if (!body) {
        count(counters_.cache_corrupt);
        log_warn("cache: discarded " + url + ": " + error);
        if (current) erase_locked(found->id, true);
        return nullptr;
    }
    auto copy = std::make_shared<Entry>(*found);
    copy->body = std::move(body);
    if (current) {
        memory_bytes_ += copy->body_size;
        it->second.entry = copy;
        trim_locked();
    }
    return copy;
}

void Store::put(Entry e) {
    if (e.body_size > o_.max_object_bytes || !e.body || e.body->size() != e.body_size) return;
    e.id = entry_id(e.url, e.vary);
    auto ptr = std::make_shared<const Entry>(std::move(e));
    std::lock_guard lock(mu_);
    insert_locked(ptr, 0);
    queue_write(ptr);
    count(counters_.cache_stored);
    trim_locked();
}

std::shared_ptr<const Entry> Store::replace(const std::shared_ptr<const Entry>& old, Entry updated) {
    updated.id = old->id;
    updated.url = old->url;
    updated.vary = old->vary;
    updated.body = old->body;
    updated.body_size = old->body_size;
    auto ptr = std::make_shared<const Entry>(std::move(updated));
    std::lock_guard lock(mu_);
    auto it = slots_.find(old->id);
    if (it == slots_.end() || it->second.entry->response_time > old->response_time) return ptr;  // a newer one is there
    insert_locked(ptr, 0);
    queue_write(ptr);
    trim_locked();
    return ptr;
}

void Store::remove(const std::shared_ptr<const Entry>& e) {
    std::lock_guard lock(mu_);
    auto it = slots_.find(e->id);
    if (it != slots_.end() && it->second.entry == e) erase_locked(e->id, true);
}

void Store::invalidate(const std::string& url) {
    std::lock_guard lock(mu_);
    auto u = by_url_.find(url);
    if (u == by_url_.end()) return;
    for (const auto& id : std::vector<std::string>(u->second)) {
        erase_locked(id, true);
        count(counters_.cache_invalidated);
    }
}

size_t Store::entries() const {
    std::lock_guard lock(mu_);
    return slots_.size();
}

uint64_t Store::disk_bytes() const {
    std::lock_guard lock(mu_);
    return disk_bytes_;
}

uint64_t Store::memory_bytes() const {
    std::lock_guard lock(mu_);
    return memory_bytes_;
}

}  // namespace vigil::cache

// The bytes a relay holds back until they are scanned (inspect.hold_bytes), in a buffer that
// the thread keeps for the next response. A fresh 320 KiB string per response cost more than the
// copy into it: glibc hands blocks that large back to the kernel when they are freed, so every
// response faulted its pages in again (bulk 1 MiB: ~80 us of CPU per response; docs/performance.md).
// A worker keeps at most kKeep of them (2.5 MiB at the default hold).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace vigil::wire {

class HeldBytes {
public:
    HeldBytes() {
        auto& free = free_list();
        if (free.empty()) {
            bytes_ = std::make_unique<std::string>();
        } else {
            bytes_ = std::move(free.back());
            free.pop_back();
        }
    }
    ~HeldBytes() {
        auto& free = free_list();
        // Kept only while few and not oversized, so a burst of large holds is given back.
        if (free.size() < kKeep && bytes_->capacity() <= kKeepCapacity) {
            bytes_->clear();
            free.push_back(std::move(bytes_));
        }
    }
    HeldBytes(const HeldBytes&) = delete;
    HeldBytes& operator=(const HeldBytes&) = delete;

    void reserve(size_t n) { bytes_->reserve(n); }
    void append(std::string_view piece) { bytes_->append(piece); }
    size_t size() const { return bytes_->size(); }
    bool empty() const { return bytes_->empty(); }
    operator std::string_view() const { return *bytes_; }

private:
    static constexpr size_t kKeep = 8;
    static constexpr size_t kKeepCapacity = 2u << 20;
    static std::vector<std::unique_ptr<std::string>>& free_list() {
        thread_local std::vector<std::unique_ptr<std::string>> free;
        return free;
    }
    std::unique_ptr<std::string> bytes_;
};

}  // namespace vigil::wire

// The buffers a body relay borrows from its thread: a 64 KiB relay buffer, and the bytes held
// back until they are scanned (inspect.hold_bytes). Each comes from a small per-thread free
// list and goes back to it: allocating them per message had been, respectively, 13% of a
// keep-alive request's CPU (a zeroed 64 KiB vector) and ~80 us per 1 MiB response (a fresh
// ~320 KiB string, whose pages glibc returned to the kernel at every free; docs/performance.md).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace vigil::wire {

// Up to `Keep` idle T per thread; `make` builds a new one when none is idle.
template <class T, std::size_t Keep>
class ThreadFreeList {
public:
    template <class Make>
    static std::unique_ptr<T> take(Make make) {
        auto& free = list();
        if (free.empty()) return make();
        auto p = std::move(free.back());
        free.pop_back();
        return p;
    }
    static void give(std::unique_ptr<T> p) {
        auto& free = list();
        if (free.size() < Keep) free.push_back(std::move(p));
    }

private:
    static std::vector<std::unique_ptr<T>>& list() {
        thread_local std::vector<std::unique_ptr<T>> free;
        return free;
    }
};

// 64 KiB, not zeroed; at most 32 kept per thread.
class RelayBuffer {
public:
    static constexpr std::size_t kSize = 64 * 1024;
    RelayBuffer() : buf_(Free::take([] { return std::unique_ptr<char[]>(new char[kSize]); })) {}
    ~RelayBuffer() { Free::give(std::move(buf_)); }
    RelayBuffer(const RelayBuffer&) = delete;
    RelayBuffer& operator=(const RelayBuffer&) = delete;
    char* data() { return buf_.get(); }
    static constexpr std::size_t size() { return kSize; }

private:
    using Free = ThreadFreeList<char[], 32>;
    std::unique_ptr<char[]> buf_;
};

// The held bytes; at most 8 kept per thread (2.5 MiB at the default hold), none over 2 MiB.
class HeldBytes {
public:
    HeldBytes() : bytes_(Free::take([] { return std::make_unique<std::string>(); })) {}
    ~HeldBytes() {
        if (bytes_->capacity() > kKeepCapacity) return;  // a burst of large holds is given back
        bytes_->clear();
        Free::give(std::move(bytes_));
    }
    HeldBytes(const HeldBytes&) = delete;
    HeldBytes& operator=(const HeldBytes&) = delete;

    void reserve(std::size_t n) { bytes_->reserve(n); }
    void append(std::string_view piece) { bytes_->append(piece); }
    std::size_t size() const { return bytes_->size(); }
    bool empty() const { return bytes_->empty(); }
    operator std::string_view() const { return *bytes_; }

private:
    using Free = ThreadFreeList<std::string, 8>;
    static constexpr std::size_t kKeepCapacity = 2u << 20;
    std::unique_ptr<std::string> bytes_;
};

}  // namespace vigil::wire

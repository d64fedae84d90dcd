// An immutable snapshot that is swapped whole (the ruleset in force, the CA material).
#pragma once

#include <memory>
#include <mutex>
#include <utility>

namespace vigil::core {

// Readers take a shared_ptr copy and keep it for as long as they need it. The lock is held
// for one pointer copy per transaction, and the old snapshot is released outside it.
template <class T>
class Snapshot {
public:
    std::shared_ptr<T> load() const {
        std::lock_guard lock(mu_);
        return ptr_;
    }
    void store(std::shared_ptr<T> next) {
        std::shared_ptr<T> old;
        {
            std::lock_guard lock(mu_);
            old = std::exchange(ptr_, std::move(next));
        }
        // `old` is released here, outside the lock.
    }

private:
    mutable std::mutex mu_;
    std::shared_ptr<T> ptr_;
};

}  // namespace vigil::core

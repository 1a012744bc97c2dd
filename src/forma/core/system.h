// What this process may use of the machine: cores (its affinity mask) and memory (what the kernel
// reports available, within the cgroup's limit). Sizes that come from untrusted files (config.json,
// recipes, flags) are checked against these before anything is allocated, so a nonsense size is an
// error saying what it would need instead of an allocator failure deep inside LibTorch.
#pragma once
#include <cstdint>
#include <string>

namespace forma {

// Cores in this process's affinity mask (at least 1).
int available_cores();

// The most compute threads a command accepts: oversubscribing the cores more than this only
// slows the work down (and 100,000 threads take minutes to start).
int max_threads();

// Throws forma::Error naming `what` unless threads is 0 (the default) or in 1..max_threads().
void check_thread_count(int64_t threads, const std::string& what);

// Bytes of memory this process can still expect to get: MemAvailable from /proc/meminfo, lowered
// to the cgroup's memory.max minus its current use where one is set. 0 when unknown.
uint64_t available_memory_bytes();

// Throws forma::Error when `bytes` clearly exceed the available memory: "<what> needs N GiB, this
// machine has M GiB available". Does nothing when the available memory is unknown.
void check_fits_in_memory(double bytes, const std::string& what);

// "1.50 GiB", "12.0 MiB": for messages.
std::string human_bytes(double bytes);

}  // namespace forma

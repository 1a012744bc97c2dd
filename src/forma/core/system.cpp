#include "forma/core/system.h"

#include <sched.h>

#include <algorithm>
#include <fstream>
#include <limits>
#include <sstream>

#include "forma/core/error.h"

namespace forma {

int available_cores() {
  cpu_set_t mask;
  CPU_ZERO(&mask);
  return sched_getaffinity(0, sizeof mask, &mask) == 0 ? std::max(1, CPU_COUNT(&mask)) : 1;
}

int max_threads() { return std::max(64, 8 * available_cores()); }

void check_thread_count(int64_t threads, const std::string& what) {
  check(threads >= 0 && threads <= max_threads(),
        "{}: {} threads is not a thread count for this machine (0 for the default, or 1 to {}: this process may "
        "run on {} cores)",
        what, threads, max_threads(), available_cores());
}

namespace {

// A number from a one-line file such as /sys/fs/cgroup/memory.max ("max" or absent: none).
uint64_t read_limit(const char* path) {
  std::ifstream in(path);
  std::string text;
  if (!(in >> text) || text == "max") return std::numeric_limits<uint64_t>::max();
  try {
    return std::stoull(text);
  } catch (const std::exception&) {
    return std::numeric_limits<uint64_t>::max();
  }
}

}  // namespace

uint64_t available_memory_bytes() {
  uint64_t available = 0;
  std::ifstream meminfo("/proc/meminfo");
  std::string line;
  while (std::getline(meminfo, line)) {
    std::istringstream fields(line);
    std::string key;
    uint64_t kib = 0;
    if (fields >> key >> kib && key == "MemAvailable:") available = kib * 1024;
  }
  const uint64_t limit = read_limit("/sys/fs/cgroup/memory.max");
  const uint64_t used = read_limit("/sys/fs/cgroup/memory.current");
  if (limit != std::numeric_limits<uint64_t>::max() && used != std::numeric_limits<uint64_t>::max()) {
    const uint64_t left = limit > used ? limit - used : 0;
    available = available ? std::min(available, left) : left;
  }
  return available;
}

void check_fits_in_memory(double bytes, const std::string& what) {
  const uint64_t available = available_memory_bytes();
  if (available == 0) return;
  check(bytes <= static_cast<double>(available), "{} needs {} of memory, this machine has {} available",
        what, human_bytes(bytes), human_bytes(static_cast<double>(available)));
}

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int unit = 0;
  while (bytes >= 1024 && unit < 6) bytes /= 1024, ++unit;
  return bytes < 10 ? fmt::format("{:.2f} {}", bytes, units[unit]) : fmt::format("{:.1f} {}", bytes, units[unit]);
}

}  // namespace forma

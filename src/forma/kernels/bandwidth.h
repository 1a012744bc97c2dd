// The machine's streaming-read bandwidth, measured the way decode reads weights: every byte of a
// buffer much larger than the last-level cache read once per pass, split among LibTorch's threads
// (at::parallel_for, the thread count set at the time of the call). The denominator of "fraction of
// the memory bandwidth" figures (forma bench gemv; issue 14's decode target).
#pragma once

#include <cstddef>

namespace forma::kernels {

struct ReadBandwidth {
  double gb_per_s = 0;  // median over the passes, 1e9 bytes per second
  double best_gb_per_s = 0;
  size_t bytes = 0;     // the buffer's size
  int passes = 0;
  int threads = 0;
};

// Sums a `bytes` buffer (allocated and written once here) `passes` times after one warm-up pass.
ReadBandwidth measure_read_bandwidth(size_t bytes = size_t{512} << 20, int passes = 7);

}  // namespace forma::kernels

// Seeded permutations that are the same on every machine and standard library. std::shuffle and
// std::uniform_int_distribution are implementation-defined (libstdc++ and libc++ differ), so only
// the raw output of std::mt19937_64 (fixed by the standard) is used, with our own bounded draw.
#pragma once
#include <cstdint>
#include <random>
#include <vector>

namespace forma::data {

// Uniform integer in [0, n), n >= 1, by rejection sampling of raw 64-bit outputs (no modulo bias).
uint64_t uniform_below(std::mt19937_64& rng, uint64_t n);

// Fisher-Yates permutation of 0..n-1 driven by std::mt19937_64(seed).
std::vector<int64_t> shuffled_range(int64_t n, uint64_t seed);

// Derives independent seeds from one user seed (splitmix64 finaliser over seed, stream, index):
// e.g. stream "validation split", or stream "sample order" with index = epoch.
uint64_t derive_seed(uint64_t seed, uint64_t stream, uint64_t index = 0);

}  // namespace forma::data

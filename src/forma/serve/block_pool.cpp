#include "forma/serve/block_pool.h"

#include <algorithm>

#include "forma/core/error.h"

namespace forma::serve {

BlockPool::BlockPool(int64_t num_blocks, int64_t block_size)
    : block_size_(block_size), blocks_(static_cast<size_t>(num_blocks)) {
  check(num_blocks > 0 && block_size > 0, "KV cache: {} blocks of {} tokens", num_blocks, block_size);
  // Handed out from the back: block 0 first.
  for (int64_t b = num_blocks - 1; b >= 0; --b) free_.push_back(static_cast<int32_t>(b));
}

std::optional<int32_t> BlockPool::allocate() {
  int32_t block;
  if (!free_.empty()) {
    block = free_.back();
    free_.pop_back();
  } else if (!cached_.empty()) {
    block = cached_.front();
    cached_.pop_front();
    unregister(block);
  } else {
    return std::nullopt;
  }
  blocks_[block].ref_count = 1;
  return block;
}

void BlockPool::release(int32_t block) {
  Block& b = blocks_[block];
  check(b.ref_count > 0, "KV cache: block {} released more often than taken", block);
  if (--b.ref_count > 0) return;
  if (b.registered) {
    b.lru = cached_.insert(cached_.end(), block);
  } else {
    free_.push_back(block);
  }
}

uint64_t BlockPool::block_key(uint64_t parent, const int32_t* tokens, int64_t count) {
  // splitmix64 steps chained over the parent key and the ids: cheap and well mixed.
  auto mix = [](uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
  };
  uint64_t h = mix(parent ^ 0x243f6a8885a308d3ULL);
  for (int64_t i = 0; i < count; ++i) h = mix(h ^ static_cast<uint32_t>(tokens[i]));
  return h == 0 ? 1 : h;  // 0 is "no parent"
}

std::optional<int32_t> BlockPool::lookup(uint64_t key, uint64_t parent, const int32_t* tokens) const {
  auto it = by_key_.find(key);
  if (it == by_key_.end()) return std::nullopt;
  const Block& b = blocks_[it->second];
  if (b.parent != parent || !std::equal(b.tokens.begin(), b.tokens.end(), tokens)) return std::nullopt;
  return it->second;
}

void BlockPool::acquire(int32_t block) {
  Block& b = blocks_[block];
  if (b.ref_count == 0) {
    check(b.registered, "KV cache: block {} is neither in use nor cached", block);
    cached_.erase(b.lru);
  }
  ++b.ref_count;
}

void BlockPool::register_full(int32_t block, uint64_t key, uint64_t parent, const int32_t* tokens) {
  Block& b = blocks_[block];
  if (b.registered || by_key_.count(key)) return;
  b.registered = true;
  b.key = key;
  b.parent = parent;
  b.tokens.assign(tokens, tokens + block_size_);
  by_key_.emplace(key, block);
}

void BlockPool::unregister(int32_t block) {
  Block& b = blocks_[block];
  if (!b.registered) return;
  by_key_.erase(b.key);
  b.registered = false;
  b.tokens.clear();
}

}  // namespace forma::serve

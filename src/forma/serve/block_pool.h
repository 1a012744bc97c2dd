// Bookkeeping of the paged KV cache's blocks (no tensors here: paged_kv.h holds the storage).
// Every block is in exactly one of three states:
//   free     - holds nothing of value, on the free list;
//   in use   - ref_count > 0: in the block table of that many sequences (a shared prefix block
//              has several);
//   cached   - ref_count == 0 but it holds a full block of tokens registered in the prefix map,
//              so a later request with the same prefix can take it back; such blocks are evicted
//              least recently released first when the free list runs dry.
// A full block's key is a hash of (the key of the block before it, its token ids), so equal keys
// mean equal prefixes up to and including the block; a hit is also checked against the stored
// ids and parent key, so a wrong hit needs two 64-bit keys to collide.
#pragma once
#include <cstdint>
#include <list>
#include <optional>
#include <unordered_map>
#include <vector>

namespace forma::serve {

class BlockPool {
 public:
  BlockPool(int64_t num_blocks, int64_t block_size);

  int64_t num_blocks() const { return static_cast<int64_t>(blocks_.size()); }
  int64_t block_size() const { return block_size_; }
  int64_t free_blocks() const { return static_cast<int64_t>(free_.size()); }
  int64_t cached_blocks() const { return static_cast<int64_t>(cached_.size()); }
  // Blocks referenced by some sequence.
  int64_t used_blocks() const { return num_blocks() - free_blocks() - cached_blocks(); }
  // Blocks allocate() can still hand out (free, or cached and evictable).
  int64_t available_blocks() const { return free_blocks() + cached_blocks(); }

  // A block for a sequence (ref_count 1): a free one, else the least recently released cached
  // one (dropped from the prefix map). nullopt when every block is in use.
  std::optional<int32_t> allocate();
  // One sequence lets go of `block`; at ref_count 0 it becomes cached (if registered) or free.
  void release(int32_t block);

  // The key of a full block holding `tokens` after the block with key `parent` (0 for the first).
  static uint64_t block_key(uint64_t parent, const int32_t* tokens, int64_t count);
  // The block registered under `key` for these tokens and parent, or nullopt.
  std::optional<int32_t> lookup(uint64_t key, uint64_t parent, const int32_t* tokens) const;
  // Whether a lookup hit would take the block out of the cached state (ref_count 0).
  bool is_cached(int32_t block) const { return blocks_[block].ref_count == 0; }
  // A sequence takes a block found by lookup() (ref_count + 1, out of the cached list).
  void acquire(int32_t block);
  // Registers an in-use full block under `key` unless another block already holds that key.
  void register_full(int32_t block, uint64_t key, uint64_t parent, const int32_t* tokens);

  int32_t ref_count(int32_t block) const { return blocks_[block].ref_count; }

 private:
  struct Block {
    int32_t ref_count = 0;
    bool registered = false;
    uint64_t key = 0, parent = 0;
    std::vector<int32_t> tokens;            // the block's ids, when registered
    std::list<int32_t>::iterator lru;       // position in cached_, when cached
  };
  void unregister(int32_t block);

  int64_t block_size_;
  std::vector<Block> blocks_;
  std::vector<int32_t> free_;
  std::list<int32_t> cached_;  // least recently released first
  std::unordered_map<uint64_t, int32_t> by_key_;
};

}  // namespace forma::serve

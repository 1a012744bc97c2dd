// The BPE merge loop shared by the tokenizer.json model (merges between token ids) and tiktoken
// (merges of byte strings that are themselves tokens): repeatedly merge the adjacent pair of lowest
// rank, the leftmost one on ties. A heap keeps it O(n log n) even when a whole text is one word
// (tokenizer.json files without a pre-tokenizer, such as Mistral's).
#pragma once
#include <cstdint>
#include <queue>
#include <vector>

namespace forma::tok {

struct BpeSymbol {
  int32_t id;      // token id (or rank) of the bytes [start, start + len) of the word
  uint32_t start;  // byte offset in the word
  uint32_t len;    // 0 once merged into its left neighbour
  int32_t prev, next;
};

struct BpeMerge {
  int32_t rank;    // lower merges first; < 0 means the pair does not merge
  int32_t new_id;
};

// pair_merge(left, right) -> BpeMerge. On return the live symbols (len > 0) are the result.
template <typename PairMerge>
void bpe_merge(std::vector<BpeSymbol>& symbols, PairMerge&& pair_merge) {
  struct Candidate {
    int32_t rank, left, right, left_id, right_id, new_id;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> heap;
  auto push = [&](int32_t left) {
    int32_t right = symbols[left].next;
    if (left < 0 || right < 0) return;
    BpeMerge m = pair_merge(symbols[left], symbols[right]);
    if (m.rank >= 0) heap.push({m.rank, left, right, symbols[left].id, symbols[right].id, m.new_id});
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) push(i);
  while (!heap.empty()) {
    Candidate c = heap.top();
    heap.pop();
    BpeSymbol& left = symbols[c.left];
    // Stale entries: one side was merged away or changed since the candidate was pushed.
    if (left.len == 0 || left.next != c.right || left.id != c.left_id || symbols[c.right].id != c.right_id ||
        symbols[c.right].len == 0)
      continue;
    BpeSymbol& right = symbols[c.right];
    left.id = c.new_id;
    left.len += right.len;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = c.left;
    right.len = 0;
    if (left.prev >= 0) push(left.prev);
    push(c.left);
  }
}

}  // namespace forma::tok

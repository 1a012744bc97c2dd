#include "forma/data/sft_packing.h"

#include <algorithm>
#include <numeric>
#include <set>
#include <utility>

#include "forma/core/error.h"

namespace forma::data {

double SftLayout::efficiency(int64_t capacity) const {
  return rows.empty() ? 0.0
                      : static_cast<double>(tokens) / (static_cast<double>(rows.size()) * static_cast<double>(capacity));
}

SftLayout layout_samples(const std::vector<int64_t>& lengths, int64_t capacity, bool packing) {
  check(capacity >= 1, "SFT rows need a capacity >= 1, not {}", capacity);
  SftLayout layout;
  auto place = [&](int64_t sample) {
    check(lengths[sample] >= 1, "SFT sample {} is empty", sample);
    const int64_t n = std::min(lengths[sample], capacity);
    if (n < lengths[sample]) ++layout.truncated;
    layout.tokens += n;
    return n;
  };
  if (!packing) {
    for (int64_t s = 0; s < static_cast<int64_t>(lengths.size()); ++s) layout.rows.push_back({{s}, place(s)});
    return layout;
  }
  // Longest first; equal lengths keep the caller's order (a stable sort), so the result is fixed.
  std::vector<int64_t> order(lengths.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return lengths[a] > lengths[b]; });
  std::set<std::pair<int64_t, int64_t>> free_space;  // (tokens left, row): the best fit is a lower_bound
  for (int64_t s : order) {
    const int64_t n = place(s);
    auto it = free_space.lower_bound({n, -1});
    int64_t row;
    if (it == free_space.end()) {
      row = static_cast<int64_t>(layout.rows.size());
      layout.rows.emplace_back();
    } else {
      row = it->second;
      free_space.erase(it);
    }
    layout.rows[row].samples.push_back(s);
    layout.rows[row].tokens += n;
    if (capacity - layout.rows[row].tokens > 0) free_space.insert({capacity - layout.rows[row].tokens, row});
  }
  return layout;
}

}  // namespace forma::data

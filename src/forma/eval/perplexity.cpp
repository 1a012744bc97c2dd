#include "forma/eval/perplexity.h"

#include <cmath>

#include "forma/core/error.h"

namespace forma::eval {

double PerplexityResult::token_perplexity() const { return std::exp(-loglikelihood / static_cast<double>(tokens)); }
double PerplexityResult::word_perplexity() const { return std::exp(-loglikelihood / static_cast<double>(words)); }
double PerplexityResult::byte_perplexity() const { return std::exp(-loglikelihood / static_cast<double>(bytes)); }
double PerplexityResult::bits_per_byte() const { return -loglikelihood / static_cast<double>(bytes) / std::log(2.0); }

void PerplexityResult::add(const PerplexityResult& o) {
  loglikelihood += o.loglikelihood;
  tokens += o.tokens;
  words += o.words;
  bytes += o.bytes;
  documents += o.documents;
}

double rolling_loglikelihood(Scorer& scorer, int32_t prefix_id, const std::vector<int32_t>& ids,
                             const PerplexityOptions& options) {
  int64_t max_len = options.max_length > 0 ? options.max_length : scorer.max_length();
  int64_t stride = options.stride > 0 ? options.stride : max_len;
  check(max_len >= 1 && stride <= max_len, "perplexity: stride {} must be at most max_length {}", stride, max_len);
  // s = [prefix] + ids; positions 1..N are predicted, `stride` new ones per window, each window
  // feeding at most max_len tokens: s[c .. b-1) predicts s[c+1 .. b).
  std::vector<int32_t> s;
  s.reserve(ids.size() + 1);
  s.push_back(prefix_id);
  s.insert(s.end(), ids.begin(), ids.end());
  const auto n = static_cast<int64_t>(s.size());
  double total = 0;
  for (int64_t a = 1; a < n; a += stride) {
    int64_t b = std::min(a + stride, n);
    int64_t c = std::max<int64_t>(0, b - 1 - max_len);
    std::vector<int32_t> context(s.begin() + c, s.begin() + a);
    std::vector<int32_t> continuation(s.begin() + a, s.begin() + b);
    for (double lp : scorer.continuation_logprobs(context, continuation)) total += lp;
  }
  return total;
}

static int64_t count_words(const std::string& text) {
  // Python's len(re.split(r"\s+", text)): pieces between runs of whitespace, empty ends included.
  int64_t pieces = 1;
  bool in_space = false;
  for (unsigned char c : text) {
    bool space = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
    if (space && !in_space) ++pieces;
    in_space = space;
  }
  return pieces;
}

PerplexityResult document_perplexity(Scorer& scorer, const tok::Tokenizer& tokenizer, const std::string& text,
                                     const PerplexityOptions& options) {
  auto prefix = tokenizer.bos_id() ? tokenizer.bos_id() : tokenizer.eos_id();
  check(prefix.has_value(), "perplexity needs a tokenizer with a BOS or EOS token to start documents");
  PerplexityResult r;
  auto ids = tokenizer.encode(text, false);
  r.loglikelihood = rolling_loglikelihood(scorer, *prefix, ids, options);
  r.tokens = static_cast<int64_t>(ids.size());
  r.words = count_words(text);
  r.bytes = static_cast<int64_t>(text.size());
  r.documents = 1;
  return r;
}

}  // namespace forma::eval

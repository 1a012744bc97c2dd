// Perplexity of text the way lm-evaluation-harness reports wikitext: the document's tokens scored
// with rolling windows (every token predicted once, with as much preceding context as fits), summed
// log-likelihood turned into per-token, per-word and per-byte perplexity and bits per byte.
#pragma once
#include <string>
#include <vector>

#include "forma/eval/scorer.h"
#include "forma/tokenizer/tokenizer.h"

namespace forma::eval {

struct PerplexityOptions {
  int64_t max_length = 0;  // tokens the model sees at once; <= 0: the scorer's max_length()
  int64_t stride = 0;      // new tokens scored per window; <= 0: max_length (disjoint windows)
};

struct PerplexityResult {
  double loglikelihood = 0;  // natural log, summed
  int64_t tokens = 0, words = 0, bytes = 0, documents = 0;
  double token_perplexity() const;
  double word_perplexity() const;
  double byte_perplexity() const;
  double bits_per_byte() const;
  void add(const PerplexityResult& other);
};

// Scores `ids` (a whole document) after `prefix_id` (BOS or EOS: the first token is predicted from it).
double rolling_loglikelihood(Scorer& scorer, int32_t prefix_id, const std::vector<int32_t>& ids,
                             const PerplexityOptions& options);

// One document: tokenized without special tokens, words as lm-eval counts them (split on \s+).
PerplexityResult document_perplexity(Scorer& scorer, const tok::Tokenizer& tokenizer, const std::string& text,
                                     const PerplexityOptions& options);

}  // namespace forma::eval

// Choosing the next token from one row of logits [V]: the logits processors of Hugging Face's
// generate, applied in its order (repetition penalty, temperature, top-k, top-p, min-p), then either
// argmax (temperature 0) or a draw from softmax with a seeded generator, so that one seed fixes the
// sampled tokens. Every filter keeps at least one token (HF's min_tokens_to_keep = 1) and marks
// removed tokens with -inf, exactly as HF does, so the surviving distribution is softmax(result).
#pragma once
#include <torch/torch.h>

#include <cstdint>

namespace forma::infer {

struct SamplingConfig {
  double temperature = 1.0;         // 0 = greedy (argmax); else logits are divided by it. >= 0
  int64_t top_k = 0;                // keep the k largest logits (ties with the k-th kept); 0 = off
  double top_p = 1.0;               // keep the smallest set whose probability reaches p; 1 = off
  double min_p = 0.0;               // drop tokens with prob < min_p * max prob; 0 = off
  double repetition_penalty = 1.0;  // HF's: seen tokens' logits x>0 -> x/r, x<0 -> x*r; 1 = off

  bool greedy() const { return temperature == 0.0; }
  // Throws forma::Error naming the field that is out of range.
  void validate() const;
};

// Each filter takes a float logits tensor [..., V] and returns a new one (input untouched).
// `seen` is a bool mask [V] of the tokens seen so far (prompt and generated, as in HF).
torch::Tensor apply_repetition_penalty(const torch::Tensor& logits, const torch::Tensor& seen,
                                       double penalty);
torch::Tensor apply_temperature(const torch::Tensor& logits, double temperature);
torch::Tensor apply_top_k(const torch::Tensor& logits, int64_t top_k);
torch::Tensor apply_top_p(const torch::Tensor& logits, double top_p);
torch::Tensor apply_min_p(const torch::Tensor& logits, double min_p);

// All processors that `config` enables, in HF's order. For greedy decoding only the repetition
// penalty applies (HF applies no warpers without do_sample).
torch::Tensor process_logits(const torch::Tensor& logits, const torch::Tensor& seen,
                             const SamplingConfig& config);

// Stateful sampler for one sequence: remembers the tokens seen (for the repetition penalty) and owns
// its random generator. Sampling runs on the CPU whatever the model's device, so a seed gives the
// same tokens on every device.
class Sampler {
 public:
  Sampler(const SamplingConfig& config, uint64_t seed, int64_t vocab_size);

  // Marks tokens as seen (the prompt first, then every chosen token; next() does that itself).
  void observe(const std::vector<int32_t>& tokens);
  // Chooses the next token from raw logits [V] and marks it seen. Throws forma::Error when the
  // row has the wrong size or holds NaN.
  int32_t next(const torch::Tensor& logits);

  const SamplingConfig& config() const { return config_; }

 private:
  SamplingConfig config_;
  int64_t vocab_size_;
  torch::Tensor seen_;  // bool [V]
  at::Generator generator_;
};

}  // namespace forma::infer

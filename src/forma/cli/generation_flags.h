// What `forma generate` and `forma chat` share: the generation flags (each overrides the model
// folder's generation_config.json only when given) and unbuffered writes to stdout for streamed text.
#pragma once
#include <CLI/CLI.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "forma/infer/generate.h"

namespace forma::cli {

class GenerationFlags {
 public:
  // Adds --max-new-tokens --temperature --top-k --top-p --min-p --repetition-penalty --seed --stop.
  // The object must outlive the parse (CLI11 writes into it).
  void add_to(CLI::App* command);
  // Sets the fields whose flags were given, then validates `config`.
  void apply(infer::GenerationConfig* config) const;

 private:
  int64_t max_new_tokens_ = 0;
  double temperature_ = 0, top_p_ = 1, min_p_ = 0, repetition_penalty_ = 1;
  int64_t top_k_ = 0;
  uint64_t seed_ = 0;
  std::vector<std::string> stop_;
  CLI::Option *max_new_tokens_flag_ = nullptr, *temperature_flag_ = nullptr, *top_k_flag_ = nullptr,
              *top_p_flag_ = nullptr, *min_p_flag_ = nullptr, *repetition_penalty_flag_ = nullptr,
              *seed_flag_ = nullptr, *stop_flag_ = nullptr;
};

// Writes `text` to stdout and flushes, so streamed text appears as it is generated. A write that
// fails (a full disk, a closed stdout) throws forma::Error with the reason.
void write_stdout(std::string_view text);

}  // namespace forma::cli

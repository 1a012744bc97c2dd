#include "forma/cli/generation_flags.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "forma/core/error.h"

namespace forma::cli {

void GenerationFlags::add_to(CLI::App* cmd) {
  max_new_tokens_flag_ = cmd->add_option("--max-new-tokens", max_new_tokens_,
                                         "most tokens to generate (default 128 or generation_config.json)");
  temperature_flag_ = cmd->add_option("--temperature", temperature_, "0 = greedy");
  top_k_flag_ = cmd->add_option("--top-k", top_k_, "keep the k most likely tokens; 0 = off");
  top_p_flag_ = cmd->add_option("--top-p", top_p_, "nucleus sampling; 1 = off");
  min_p_flag_ = cmd->add_option("--min-p", min_p_, "drop tokens below min_p x top probability");
  repetition_penalty_flag_ = cmd->add_option("--repetition-penalty", repetition_penalty_,
                                             "HF repetition penalty over seen tokens; 1 = off");
  seed_flag_ = cmd->add_option("--seed", seed_, "random seed for sampling (default 0)");
  stop_flag_ = cmd->add_option("--stop", stop_, "stop string (repeatable); cut from the output");
}

void GenerationFlags::apply(infer::GenerationConfig* config) const {
  if (max_new_tokens_flag_->count()) config->max_new_tokens = max_new_tokens_;
  auto& s = config->sampling;
  if (temperature_flag_->count()) s.temperature = temperature_;
  if (top_k_flag_->count()) s.top_k = top_k_;
  if (top_p_flag_->count()) s.top_p = top_p_;
  if (min_p_flag_->count()) s.min_p = min_p_;
  if (repetition_penalty_flag_->count()) s.repetition_penalty = repetition_penalty_;
  if (seed_flag_->count()) config->seed = seed_;
  if (stop_flag_->count()) config->stop_strings = stop_;
  config->validate();
}

void write_stdout(std::string_view text) {
  errno = 0;
  if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout) != 0) {
    // Output nobody receives is lost work: stop now (exit 1) instead of generating on.
    fail("writing standard output: {}", errno ? std::strerror(errno) : "write failed");
  }
}

}  // namespace forma::cli

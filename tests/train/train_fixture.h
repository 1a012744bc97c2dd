// Shared by the training tests: a learnable synthetic dataset (arithmetic token sequences, so the
// next token follows from the previous two), the tiny recipe pointed at scratch folders, and a way
// to run the built forma binary.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "test_paths.h"

namespace forma::test {

// Writes PREFIX.bin/.idx: `documents` documents of `length` ids below `vocab`.
std::string write_pattern_dataset(const std::string& dir, int documents = 40, int length = 200, int vocab = 320);

// --set arguments that point configs/recipes/tiny-test.yaml at `data_prefix` and `output_dir`.
std::vector<std::string> tiny_overrides(const std::string& data_prefix, const std::string& output_dir);
std::string tiny_recipe_path();

// Runs forma with `args`, each quoted for the shell, waits; output holds stdout and stderr.
CommandResult run_forma(const std::vector<std::string>& args);

// The "loss" values of metrics.jsonl in step order, as written (text, for bit-exact comparison).
std::vector<std::pair<int64_t, std::string>> logged_losses(const std::string& metrics_path);

// The training records of metrics.jsonl (step, loss, grad_norm) and the evaluation records
// (step, val_loss in `loss`, grad_norm 0), in file order.
struct LoggedStep {
  int64_t step = 0;
  double loss = 0, grad_norm = 0;
};
std::vector<LoggedStep> logged_steps(const std::string& metrics_path, bool validation = false);

}  // namespace forma::test

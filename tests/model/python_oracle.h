// Oracle scripts next to the model tests (tests/model/*_reference.py) that write tiny HF models and
// transformers' outputs for them into a folder, and the comparison most of those tests make.
#pragma once
#include <string>

#include "forma/model/attention.h"

namespace forma::test {

// Runs tests/model/<script> OUT once per test binary run (the first call; later calls reuse it) and
// returns OUT. The script's output goes to OUT/python.log; a failing script is a forma::Error.
const std::string& python_oracle_output(const std::string& script);

// Largest |forma's logits - reference.safetensors' "logits"| for the model folder `dir` (which holds
// its input_ids too), computed with `kernel`.
double logits_diff(const std::string& dir, AttentionKernel kernel);

}  // namespace forma::test

#include "python_oracle.h"

#include <cstdlib>
#include <map>
#include <mutex>

#include "forma/core/error.h"
#include "forma/model/causal_lm.h"
#include "forma/model/hf_io.h"
#include "forma/model/tensor_io.h"
#include "test_paths.h"

namespace forma::test {

const std::string& python_oracle_output(const std::string& script) {
  static std::mutex mutex;
  static std::map<std::string, std::string> outputs;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = outputs.find(script);
  if (it != outputs.end()) return it->second;
  const std::string out = scratch_dir();
  const std::string command = "'" + python() + "' '" + fixture("../model/" + script) + "' '" + out + "' > '" + out +
                              "/python.log' 2>&1";
  check(std::system(command.c_str()) == 0, "the oracle failed: {} (see {}/python.log)", command, out);
  return outputs.emplace(script, out).first->second;
}

double logits_diff(const std::string& dir, AttentionKernel kernel) {
  CausalLM model = load_pretrained(dir);
  model->eval();
  model->set_attention_kernel(kernel);
  auto ref = load_tensors(dir + "/reference.safetensors");
  torch::NoGradGuard no_grad;
  torch::Tensor logits = model->forward(ref.at("input_ids"));
  return (logits.to(torch::kDouble) - ref.at("logits").to(torch::kDouble)).abs().max().item<double>();
}

}  // namespace forma::test

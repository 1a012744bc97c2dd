// StableLM variants the hf-zoo fixture does not exercise (it has qk_layernorm and no parallel
// residual): use_parallel_residual (the phi-style parallel block) and partial rotary 0.5, against
// transformers' own StableLmForCausalLM (stablelm_reference.py writes the model and its logits).
#include <gtest/gtest.h>

#include <cstdlib>

#include "forma/model/causal_lm.h"
#include "forma/model/hf_io.h"
#include "forma/model/tensor_io.h"
#include "test_paths.h"

namespace forma {
namespace {

TEST(StableLmVariants, ParallelResidualMatchesTransformers) {
  const std::string dir = test::scratch_dir();
  const std::string command = "'" + test::python() + "' '" + test::fixture("../model/stablelm_reference.py") +
                              "' '" + dir + "' > '" + dir + "/python.log' 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  CausalLM model = load_pretrained(dir);
  model->eval();
  auto ref = load_tensors(dir + "/reference.safetensors");
  torch::NoGradGuard no_grad;
  torch::Tensor logits = model->forward(ref.at("input_ids"));
  const double diff = (logits.to(torch::kDouble) - ref.at("logits").to(torch::kDouble)).abs().max().item<double>();
  EXPECT_LT(diff, 1e-4);
  // No post_attention_layernorm in the parallel block: HF's checkpoint has none either.
  for (const auto& item : model->named_parameters()) {
    EXPECT_EQ(item.key().find("post_attention_layernorm"), std::string::npos) << item.key();
  }
}

}  // namespace
}  // namespace forma

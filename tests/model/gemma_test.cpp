// Gemma's own rules beyond the fixture suite (which runs hf-zoo/gemma in fp32): its config
// defaults and refusals, norms that start at the identity with weight 0, and bf16 numerics against
// HF transformers run in bf16 (gemma_bf16_reference.py): the sqrt(hidden) embedding scale is
// rounded to bf16 before it multiplies, and the (1 + w) norms multiply in fp32.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

#include "forma/core/error.h"
#include "forma/model/causal_lm.h"
#include "forma/model/config.h"
#include "forma/model/hf_io.h"
#include "forma/model/norm.h"
#include "forma/model/tensor_io.h"
#include "test_paths.h"

namespace forma {
namespace {

TEST(GemmaConfig, ReadsHfDefaultsAndTheLegacyGeluName) {
  // GemmaConfig's defaults (configuration_gemma.py, transformers 5.25): the 7B's sizes.
  ModelConfig c = parse_model_config({{"model_type", "gemma"}}, "cfg.json");
  EXPECT_EQ(c.vocab_size, 256000);
  EXPECT_EQ(c.hidden_size, 3072);
  EXPECT_EQ(c.intermediate_size, 24576);
  EXPECT_EQ(c.num_hidden_layers, 28);
  EXPECT_EQ(c.num_attention_heads, 16);
  EXPECT_EQ(c.num_key_value_heads, 16);
  EXPECT_EQ(c.head_dim, 256);  // not 3072 / 16
  EXPECT_EQ(c.hidden_act, "gelu_pytorch_tanh");
  EXPECT_EQ(c.max_position_embeddings, 8192);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.bos_token_id, 2);
  EXPECT_EQ(c.eos_token_id, std::vector<int64_t>{1});
  EXPECT_TRUE(c.norm_weight_offset);
  EXPECT_TRUE(c.scale_embeddings);
  // The published checkpoints say "gelu" (and, later, hidden_activation "gelu_pytorch_tanh"): HF
  // runs the tanh approximation for both.
  ModelConfig legacy = parse_model_config(
      {{"model_type", "gemma"}, {"hidden_act", "gelu"}, {"hidden_activation", "gelu_pytorch_tanh"}}, "cfg.json");
  EXPECT_EQ(legacy.hidden_act, "gelu_pytorch_tanh");
  EXPECT_EQ(to_hf_json(legacy)["hidden_activation"], "gelu_pytorch_tanh");  // kept for the round trip
}

TEST(GemmaConfig, RoundTripsTheFixtureAndRefusesWhatItCannotRun) {
  ModelConfig c = load_model_config(test::fixture("hf-zoo/gemma"));
  EXPECT_EQ(c.num_key_value_heads, 1);
  ModelConfig again = parse_model_config(to_hf_json(c), "again");
  EXPECT_EQ(to_hf_json(again), to_hf_json(c));
  std::string e = test::error_of([] {
    parse_model_config({{"model_type", "gemma"}, {"hidden_activation", "relu"}}, "cfg.json");
  });
  EXPECT_NE(e.find("cfg.json: field 'hidden_activation'"), std::string::npos) << e;
  e = test::error_of([] {
    parse_model_config({{"model_type", "gemma"}, {"use_bidirectional_attention", true}}, "cfg.json");
  });
  EXPECT_NE(e.find("cfg.json: field 'use_bidirectional_attention'"), std::string::npos) << e;
}

TEST(GemmaModel, FreshNormsHaveWeightZeroAndAreTheIdentityScale) {
  ModelConfig c = load_model_config(test::fixture("hf-zoo/gemma"));
  CausalLM model(c);
  model->init_weights(3);
  int norms = 0;
  for (const auto& item : model->named_parameters()) {
    if (item.key().find("norm.weight") == std::string::npos) continue;
    ++norms;
    EXPECT_EQ(item.value().abs().max().item<float>(), 0.0f) << item.key();  // HF: zeros_ for (1 + w)
  }
  EXPECT_EQ(norms, 2 * c.num_hidden_layers + 1);
  // With weight 0 the norm is x / rms(x), computed here in double by hand.
  torch::manual_seed(0);
  torch::Tensor x = torch::randn({3, c.hidden_size});
  Norm norm(NormKind::RMSNorm, c.hidden_size, 1e-6, /*weight_offset=*/true);
  norm->weight.data().normal_();
  norm->reset_to_identity();
  torch::Tensor x64 = x.to(torch::kDouble);
  torch::Tensor expected = x64 / (x64.pow(2).mean(-1, true) + 1e-6).sqrt();
  EXPECT_LT((norm->forward(x).to(torch::kDouble) - expected).abs().max().item<double>(), 1e-6);
  // And with a weight w it scales by 1 + w.
  norm->weight.data().fill_(0.5);
  EXPECT_LT((norm->forward(x).to(torch::kDouble) - 1.5 * expected).abs().max().item<double>(), 1e-6);
}

TEST(GemmaModel, Bf16ForwardMatchesHfInBf16) {
  const std::string dir = test::fixture("hf-zoo/gemma");
  const std::string out = test::scratch_dir() + "/hf_bf16.safetensors";
  const std::string command = "'" + test::python() + "' '" + test::fixture("../model/gemma_bf16_reference.py") +
                              "' '" + dir + "' '" + out + "'";
  test::CommandResult run = test::run_command(command);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  auto hf = load_tensors(out);
  // The scale HF applies is sqrt(32) cast to bf16: 5.65625, not 5.6568542.
  EXPECT_EQ(hf.at("embed_scale").item<float>(), 5.65625f);

  LoadOptions options;
  options.dtype = torch::kBFloat16;
  CausalLM model = load_pretrained(dir, options);
  torch::Tensor ids = load_tensors(dir + "/reference.safetensors").at("input_ids");
  std::vector<torch::Tensor> hidden;
  torch::NoGradGuard no_grad;
  torch::Tensor logits = model->forward_with_hidden_states(ids, &hidden);
  ASSERT_EQ(hidden.size(), 3u);
  // The embedding output is one rounding of one product: bit-identical, and the scale's rounding
  // shows (multiplying by the unrounded sqrt(32) changes some of these values).
  torch::Tensor embedded = hidden[0].to(torch::kFloat);
  EXPECT_TRUE(torch::equal(embedded, hf.at("hidden_states.0")));
  torch::Tensor unrounded = (model->named_parameters()["model.embed_tokens.weight"].index_select(0, ids.flatten())
                                 .to(torch::kFloat) * std::sqrt(32.0)).to(torch::kBFloat16).to(torch::kFloat);
  EXPECT_FALSE(torch::equal(unrounded.view(embedded.sizes()), hf.at("hidden_states.0")));
  // Past the layers the two runs' bf16 matmuls round differently (here by up to 0.04, one bf16 unit
  // near 5, and 0.7% of the largest logit; HF bf16 against HF fp32 differs by 0.06): a guard against
  // gross errors, not against rounding order, which only the embedding above pins down.
  auto worst_relative_to_largest = [](const torch::Tensor& ours, const torch::Tensor& reference) {
    return ((ours.to(torch::kFloat) - reference).abs().max() / reference.abs().max()).item<float>();
  };
  EXPECT_LT(worst_relative_to_largest(hidden.back(), hf.at("hidden_states.2")), 0.015f);
  EXPECT_LT(worst_relative_to_largest(logits, hf.at("logits")), 0.015f);
}

}  // namespace
}  // namespace forma

// Gemma 2, Gemma 3 (text) and OLMo 2 beyond the hf-zoo fixture suite (which runs their fixtures in
// fp32 through both attention kernels): the config spellings and defaults the fixtures do not use,
// against transformers itself (gemma_family_reference.py writes the models and their logits),
// fresh weights whose sandwich norms start at the identity, and PEFT's LoRA adapters on them.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <map>

#include "forma/core/error.h"
#include "forma/model/causal_lm.h"
#include "forma/model/config.h"
#include "forma/model/hf_io.h"
#include "forma/model/tensor_io.h"
#include "forma/peft/lora_model.h"
#include "python_oracle.h"
#include "test_paths.h"

namespace forma {
namespace {

const std::string& reference_dir() { return test::python_oracle_output("gemma_family_reference.py"); }

TEST(GemmaFamily, Gemma2DefaultsMatchTransformers) {
  // No layer_types (even layers slide), no query_pre_attn_scalar (256, not head_dim 8), null caps.
  const std::string dir = reference_dir() + "/gemma2";
  ModelConfig c = load_model_config(dir);
  EXPECT_EQ(c.attn_logit_softcapping, 0.0);
  EXPECT_EQ(c.final_logit_softcapping, 0.0);
  EXPECT_DOUBLE_EQ(c.attention_scale, 1.0 / 16);
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) EXPECT_EQ(c.layer_window(i), i % 2 == 0 ? 4 : 0) << i;
  EXPECT_LT(test::logits_diff(dir, AttentionKernel::Fused), 1e-4);
  EXPECT_LT(test::logits_diff(dir, AttentionKernel::Explicit), 1e-4);
}

TEST(GemmaFamily, Gemma3TransformersFourSpellingMatchesTransformers) {
  // rope_theta + rope_scaling (global), rope_local_base_freq (sliding), sliding_window_pattern 3.
  const std::string dir = reference_dir() + "/gemma3";
  ModelConfig c = load_model_config(dir);
  EXPECT_EQ(c.local_rope_theta, 1e4);
  EXPECT_EQ(c.rope_theta, 1e6);
  ASSERT_TRUE(c.rope_scaling.has_value());
  EXPECT_EQ(c.rope_scaling->factor, 4.0);
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) EXPECT_EQ(c.layer_window(i), i == 2 ? 0 : 4) << i;
  EXPECT_LT(test::logits_diff(dir, AttentionKernel::Fused), 1e-4);
  EXPECT_LT(test::logits_diff(dir, AttentionKernel::Explicit), 1e-4);
  // The round trip keeps the meaning: forma writes transformers 4's spelling back.
  ModelConfig again = parse_model_config(to_hf_json(c), "again");
  EXPECT_EQ(to_hf_json(again), to_hf_json(c));
  EXPECT_EQ(again.local_rope_theta, 1e4);
  EXPECT_EQ(again.sliding_layers, c.sliding_layers);
}

TEST(GemmaFamily, RefusesWhatItCannotRunNamingTheField) {
  auto error = [](nlohmann::json j) {
    return test::error_of([&] { parse_model_config(j, "cfg.json"); });
  };
  std::string e = error({{"model_type", "gemma3_text"},
                         {"rope_parameters", {{"sliding_attention", {{"rope_type", "linear"}, {"factor", 2.0}}}}}});
  EXPECT_NE(e.find("cfg.json: field 'rope_parameters.sliding_attention.rope_type'"), std::string::npos) << e;
  e = error({{"model_type", "gemma2"}, {"num_hidden_layers", 2}, {"layer_types", {"sliding_attention"}}});
  EXPECT_NE(e.find("cfg.json: field 'layer_types' has 1 entries for 2 layers"), std::string::npos) << e;
  e = error({{"model_type", "gemma2"}, {"num_hidden_layers", 1}, {"layer_types", {"local"}}});
  EXPECT_NE(e.find("cfg.json: field 'layer_types' entry 0"), std::string::npos) << e;
  e = error({{"model_type", "gemma2"}, {"attn_logit_softcapping", -1.0}});
  EXPECT_NE(e.find("cfg.json: field 'attn_logit_softcapping'"), std::string::npos) << e;
  e = error({{"model_type", "gemma2"}, {"query_pre_attn_scalar", 0}});
  EXPECT_NE(e.find("cfg.json: field 'query_pre_attn_scalar'"), std::string::npos) << e;
  e = error({{"model_type", "gemma3_text"}, {"use_bidirectional_attention", true}});
  EXPECT_NE(e.find("cfg.json: field 'use_bidirectional_attention'"), std::string::npos) << e;
}

// Fresh weights: every norm, the post-block ones included, is the identity scale (weight 0 with
// Gemma's 1 + w, weight 1 for OLMo 2), so a new model's blocks start as plain normalisations.
TEST(GemmaFamily, FreshSandwichNormsAreTheIdentity) {
  for (const char* fixture : {"hf-zoo/gemma2", "hf-zoo/gemma3", "hf-zoo/olmo2"}) {
    SCOPED_TRACE(fixture);
    ModelConfig c = load_model_config(test::fixture(fixture));
    CausalLM model(c);
    model->init_weights(5);
    const float identity = c.norm_weight_offset ? 0.0f : 1.0f;
    int post_norms = 0;
    for (const auto& item : model->named_parameters()) {
      if (item.key().find("norm.weight") == std::string::npos) continue;
      post_norms += item.key().find("post_") != std::string::npos;
      EXPECT_EQ((item.value() - identity).abs().max().item<float>(), 0.0f) << item.key();
    }
    EXPECT_EQ(post_norms, 2 * c.num_hidden_layers);
    // And it runs: finite logits from fresh weights.
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(torch::isfinite(model->forward(torch::arange(3, 12).unsqueeze(0))).all().item<bool>());
  }
}

// Activation checkpointing re-runs each layer in backward with the inputs it saved: the sliding
// layers' own RoPE (gemma3), soft-capped attention (gemma2), post-norm blocks (olmo2). The plain
// gradients are checked against transformers by the fixture suite; these must equal them.
TEST(GemmaFamily, RecomputedLayersGiveTheSameGradients) {
  for (const char* fixture : {"hf-zoo/gemma2", "hf-zoo/gemma3", "hf-zoo/olmo2"}) {
    SCOPED_TRACE(fixture);
    CausalLM model = load_pretrained(test::fixture(fixture));
    torch::manual_seed(1);
    torch::Tensor ids = torch::randint(3, 255, {2, 12}, torch::kInt64);  // 12 > the window of 8
    std::map<std::string, torch::Tensor> grads[2];
    for (bool recompute : {false, true}) {
      model->zero_grad();
      model->set_gradient_checkpointing(recompute);
      causal_lm_loss(model->forward(ids), ids).backward();
      for (const auto& item : model->named_parameters()) grads[recompute][item.key()] = item.value().grad().clone();
    }
    for (const auto& [name, g] : grads[0]) {
      ASSERT_TRUE(grads[1].at(name).defined()) << name;
      EXPECT_TRUE(torch::allclose(g, grads[1].at(name), 1e-5, 1e-6)) << name;
    }
  }
}

// bf16 against transformers in bf16 (gemma_bf16_reference.py), soft-caps included. The two runs'
// bf16 matmuls round differently past the first layer (GemmaModel.Bf16ForwardMatchesHfInBf16): a
// guard against gross errors in the bf16 path, not against rounding order. Measured, as a fraction
// of the largest logit: forma against HF bf16 0.023 on olmo2 (whose RMSNorm multiplies by its
// weight in fp32 where forma, as Llama, multiplies after the cast), under 0.015 on gemma2/gemma3;
// HF bf16 against HF fp32 itself 0.018 (olmo2), 0.026 (gemma2), 0.021 (gemma3).
class GemmaFamilyBf16 : public ::testing::TestWithParam<std::string> {};

TEST_P(GemmaFamilyBf16, ForwardMatchesTransformersInBf16) {
  const std::string dir = test::fixture("hf-zoo/" + GetParam());
  const std::string out = test::scratch_dir() + "/hf_bf16.safetensors";
  test::CommandResult run = test::run_command("'" + test::python() + "' '" +
                                              test::fixture("../model/gemma_bf16_reference.py") + "' '" + dir + "' '" +
                                              out + "'");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  auto hf = load_tensors(out);
  LoadOptions options;
  options.dtype = torch::kBFloat16;
  CausalLM model = load_pretrained(dir, options);
  torch::Tensor ids = load_tensors(dir + "/reference.safetensors").at("input_ids");
  torch::NoGradGuard no_grad;
  torch::Tensor logits = model->forward(ids);
  const torch::Tensor reference = hf.at("logits");
  const double worst = ((logits - reference).abs().max() / reference.abs().max()).item<double>();
  EXPECT_LT(worst, 0.04);
  // And the bf16 run is not the fp32 one: the fixture's fp32 logits differ from HF's bf16 ones.
  const torch::Tensor fp32 = load_tensors(dir + "/reference.safetensors").at("logits");
  EXPECT_GT((fp32 - reference).abs().max().item<double>(), 1e-3);
}

INSTANTIATE_TEST_SUITE_P(Zoo, GemmaFamilyBf16, ::testing::Values("gemma2", "olmo2", "gemma3"),
                         [](const auto& info) { return info.param; });

// PEFT's all-linear adapter (random A, non-zero B) on each fixture gives PEFT's logits in forma, and
// merged into the weights the same function.
class GemmaFamilyLora : public ::testing::TestWithParam<std::string> {};

TEST_P(GemmaFamilyLora, PeftAdaptersGivePeftLogits) {
  const std::string model_dir = test::fixture("hf-zoo/" + GetParam());
  const std::string adapter = test::scratch_dir() + "/adapter";
  auto r = test::run_command("'" + test::python() + "' '" + test::fixture("../peft/peft_reference.py") +
                             "' make-adapter '" + model_dir + "' '" + adapter +
                             "' all-linear --ids 1,5,9,33,7,200,41,12,3,88,150,2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  CausalLM model = load_pretrained(model_dir);
  model->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor input = torch::tensor({1, 5, 9, 33, 7, 200, 41, 12, 3, 88, 150, 2}).unsqueeze(0);
  const torch::Tensor base = model->forward(input).select(0, 0);
  peft::load_adapter(model, adapter);
  const torch::Tensor adapted = model->forward(input).select(0, 0);
  const torch::Tensor expected = load_tensors(adapter + "/reference_logits.safetensors").at("logits");
  EXPECT_GT((base - expected).abs().max().item<double>(), 1e-2) << "the adapter should change the logits";
  EXPECT_LT((adapted - expected).abs().max().item<double>(), 1e-4);
  peft::merge_lora(model);
  EXPECT_LT((model->forward(input).select(0, 0) - adapted).abs().max().item<double>(), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Zoo, GemmaFamilyLora, ::testing::Values("gemma2", "olmo2", "gemma3"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace forma

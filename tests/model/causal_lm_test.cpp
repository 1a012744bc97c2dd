// Decoder behaviour beyond the HF fixtures: activation recomputation gives the same gradients,
// the MoE aux loss equals hand computation, init follows HF's recipe, layers can be swapped by
// name, and the loss shift / ignore_index match a hand computation.
#include "forma/model/causal_lm.h"

#include <gtest/gtest.h>

#include <cmath>

#include "forma/model/hf_io.h"
#include "forma/model/mlp.h"
#include "forma/model/module_call.h"
#include "test_paths.h"

namespace forma {
namespace {

std::map<std::string, torch::Tensor> gradients_of(CausalLM& model, const torch::Tensor& ids,
                                                  bool recompute) {
  model->zero_grad();
  model->set_gradient_checkpointing(recompute);
  // The forward first: aux_loss reads the router logits it leaves (the operands of + may be
  // evaluated in either order).
  torch::Tensor logits = model->forward(ids);
  torch::Tensor loss = causal_lm_loss(logits, ids) + model->aux_loss();
  loss.backward();
  std::map<std::string, torch::Tensor> grads;
  for (const auto& item : model->named_parameters()) grads[item.key()] = item.value().grad().clone();
  return grads;
}

class Recompute : public ::testing::TestWithParam<std::string> {};

TEST_P(Recompute, GradientCheckpointingGivesTheSameGradients) {
  CausalLM model = load_pretrained(test::fixture("hf-tiny/" + GetParam()));
  torch::Tensor ids = torch::randint(0, 320, {2, 12}, torch::kInt64);
  auto plain = gradients_of(model, ids, false);
  auto recomputed = gradients_of(model, ids, true);
  ASSERT_EQ(plain.size(), recomputed.size());
  for (const auto& [name, g] : plain) {
    ASSERT_TRUE(recomputed.at(name).defined()) << name;
    EXPECT_TRUE(torch::allclose(g, recomputed.at(name), 1e-5, 1e-6)) << name;
  }
}

INSTANTIATE_TEST_SUITE_P(Archs, Recompute, ::testing::Values("gpt2", "llama", "qwen2", "mistral", "mixtral"));

TEST(CausalLM, RecomputeWorksWithFrozenEmbeddings) {
  CausalLM model = load_pretrained(test::fixture("hf-tiny/llama"));
  model->transformer()->named_parameters()["embed_tokens.weight"].set_requires_grad(false);
  model->set_gradient_checkpointing(true);
  torch::Tensor ids = torch::randint(0, 320, {1, 8}, torch::kInt64);
  causal_lm_loss(model->forward(ids), ids).backward();
  auto q = model->named_parameters()["model.layers.0.self_attn.q_proj.weight"];
  ASSERT_TRUE(q.grad().defined());
  EXPECT_GT(q.grad().abs().sum().item<double>(), 0);
}

TEST(CausalLM, LoadBalancingLossByHand) {
  // Two tokens, two experts, top-1. Router probabilities [.75 .25] and [.25 .75]: each expert gets
  // half the tokens and a mean probability of .5 -> 2 * (.5*.5 + .5*.5) = 1.
  const double l3 = std::log(3.0);
  torch::Tensor balanced = torch::tensor({{l3, 0.0}, {0.0, l3}});
  EXPECT_NEAR(load_balancing_loss({balanced}, 1).item<double>(), 1.0, 1e-6);
  // Both tokens to expert 0 with probability .75: 2 * (1 * .75 + 0 * .25) = 1.5
  torch::Tensor skewed = torch::tensor({{l3, 0.0}, {l3, 0.0}});
  EXPECT_NEAR(load_balancing_loss({skewed}, 1).item<double>(), 1.5, 1e-6);
  // Layers are concatenated: both together give 2 * (.75 * .625 + .25 * .375) = 1.125
  EXPECT_NEAR(load_balancing_loss({balanced, skewed}, 1).item<double>(), 1.125, 1e-6);
}

TEST(CausalLM, AuxLossIsScaledAndZeroForDenseModels) {
  CausalLM dense = load_pretrained(test::fixture("hf-tiny/llama"));
  torch::Tensor ids = torch::randint(0, 320, {1, 6}, torch::kInt64);
  dense->forward(ids);
  EXPECT_EQ(dense->aux_loss().item<double>(), 0.0);
  CausalLM moe = load_pretrained(test::fixture("hf-tiny/mixtral"));
  moe->forward(ids);
  torch::Tensor aux = moe->aux_loss();
  // coefficient 0.001 times a balance loss in (0, E * top_k]
  EXPECT_GT(aux.item<double>(), 0.0);
  EXPECT_LT(aux.item<double>(), 0.001 * 8.0);
  EXPECT_TRUE(aux.requires_grad());
}

TEST(CausalLM, InitWeightsFollowsHfRecipeAndSeed) {
  ModelConfig c = load_model_config("tiny-llama");
  CausalLM a(c), b(c), other(c);
  a->init_weights(7);
  b->init_weights(7);
  other->init_weights(8);
  auto pa = a->named_parameters(), pb = b->named_parameters(), po = other->named_parameters();
  for (const auto& item : pa) EXPECT_TRUE(torch::equal(item.value(), pb[item.key()])) << item.key();
  EXPECT_FALSE(torch::equal(pa["lm_head.weight"], po["lm_head.weight"]));
  EXPECT_TRUE(torch::all(pa["model.norm.weight"] == 1).item<bool>());
  torch::Tensor w = pa["model.layers.0.mlp.up_proj.weight"];
  EXPECT_NEAR(w.mean().item<double>(), 0.0, 2e-3);
  EXPECT_NEAR(w.std().item<double>(), c.initializer_range, 1e-3);
  // gpt2: residual projections scaled by 1/sqrt(2 * n_layer), biases zero, LayerNorm weight 1
  ModelConfig g = load_model_config("tiny-gpt2");
  CausalLM gpt(g);
  gpt->init_weights(1);
  auto pg = gpt->named_parameters();
  EXPECT_NEAR(pg["model.layers.0.self_attn.o_proj.weight"].std().item<double>(),
              g.initializer_range / std::sqrt(2.0 * g.num_hidden_layers), 1e-3);
  EXPECT_EQ(pg["model.layers.0.self_attn.q_proj.bias"].abs().sum().item<double>(), 0.0);
  EXPECT_TRUE(torch::all(pg["model.layers.1.input_layernorm.weight"] == 1).item<bool>());
}

TEST(CausalLM, NamedParametersAreHfNamesForLlamaFamily) {
  CausalLM model = load_pretrained(test::fixture("hf-tiny/mixtral"));
  auto params = model->named_parameters();
  EXPECT_NE(params.find("model.layers.1.block_sparse_moe.experts.3.w2.weight"), nullptr);
  EXPECT_NE(params.find("model.layers.0.block_sparse_moe.gate.weight"), nullptr);
  EXPECT_NE(params.find("lm_head.weight"), nullptr);
  CausalLM tied = load_pretrained(test::fixture("hf-tiny/qwen2"));
  EXPECT_EQ(tied->named_parameters().find("lm_head.weight"), nullptr);
  EXPECT_NE(tied->named_parameters().find("model.layers.0.self_attn.q_proj.bias"), nullptr);
  EXPECT_EQ(tied->named_parameters().find("model.layers.0.self_attn.o_proj.bias"), nullptr);
}

// A stand-in for a tensor-parallel layer: wraps the original Linear.
class WrappedLinear : public UnaryModule {
 public:
  explicit WrappedLinear(torch::nn::Linear inner) : inner_(register_module("inner", inner)) {}
  torch::Tensor forward(const torch::Tensor& x) override {
    ++calls;
    return inner_->forward(x);
  }
  int calls = 0;

 private:
  torch::nn::Linear inner_;
};

TEST(CausalLM, LayersSwappedByNameAreUsed) {
  CausalLM model = load_pretrained(test::fixture("hf-tiny/llama"));
  torch::NoGradGuard no_grad;
  torch::Tensor ids = torch::randint(0, 320, {1, 5}, torch::kInt64);
  torch::Tensor before = model->forward(ids);
  auto attn = model->transformer()->named_modules()["layers.0.self_attn"];
  auto q = attn->named_children()["q_proj"];
  auto wrapped = std::make_shared<WrappedLinear>(torch::nn::Linear(std::dynamic_pointer_cast<torch::nn::LinearImpl>(q)));
  attn->replace_module("q_proj", wrapped);
  torch::Tensor after = model->forward(ids);
  EXPECT_EQ(wrapped->calls, 1);
  // The wrapper computes through at::linear, the model's own call through forma's small-batch
  // kernel (kernels/gemv.h) for these 5 rows: the same product, summed in another order.
  EXPECT_TRUE(torch::allclose(before, after, /*rtol=*/1e-5, /*atol=*/1e-5))
      << (before - after).abs().max().item<double>();
}

TEST(CausalLM, LossShiftsAndIgnoresMinus100ByHand) {
  // vocab 2, logits 0 everywhere except [0,0] = ln 3: CE of position 0 vs label 1 is
  // -log(1/4) = ln 4; position 1 is ignored; position 2 vs label 0 is ln 2.
  torch::Tensor logits = torch::zeros({1, 4, 2});
  logits[0][0][0] = std::log(3.0);
  torch::Tensor labels = torch::tensor({{5, 1, -100, 0}}, torch::kInt64);
  double expected = (std::log(4.0) + std::log(2.0)) / 2;
  EXPECT_NEAR(causal_lm_loss(logits, labels).item<double>(), expected, 1e-6);
}

}  // namespace
}  // namespace forma

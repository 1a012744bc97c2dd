// The decoder against Hugging Face transformers itself: for each tiny fixture (tests/fixtures/
// hf-tiny, written by HF v4.47.1, and every fixture of tests/fixtures/hf-zoo, written by HF 5.25.0,
// whose model_type the registry knows) logits, hidden states, rope frequencies, loss, gradients and
// the gradient norm, greedy decoding with the KV cache, and save/load round trips. What attention
// computes is checked with both kernels (attention.h): the fused one and the explicit reference.
// The list comes from the registry and the zoo folder, so a registered architecture cannot skip it.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "forma/core/files.h"
#include "forma/model/causal_lm.h"
#include "forma/model/hf_io.h"
#include "forma/model/hf_names.h"
#include "forma/model/rope.h"
#include "forma/model/tensor_io.h"
#include "test_paths.h"
#include "zoo_fixtures.h"

namespace forma {
namespace {

struct Fixture {
  std::string dir;
  CausalLM model{nullptr};
  std::map<std::string, torch::Tensor> ref;
  nlohmann::json json;
};

// `name`: a folder under tests/fixtures ("hf-tiny/llama", "hf-zoo/qwen3").
Fixture open_fixture(const std::string& name, AttentionKernel kernel = AttentionKernel::Fused) {
  Fixture f;
  f.dir = test::fixture(name);
  f.model = load_pretrained(f.dir);
  f.model->set_attention_kernel(kernel);
  f.model->eval();
  f.ref = load_tensors(f.dir + "/reference.safetensors");
  f.json = nlohmann::json::parse(read_file(f.dir + "/reference.json"));
  return f;
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

// Parameter gradients under HF names (gpt2: fused c_attn, Conv1D layout), after loss.backward().
std::map<std::string, torch::Tensor> hf_gradients(CausalLM& model) {
  StateDict grads;
  for (const auto& item : model->named_parameters()) {
    if (item.value().requires_grad()) grads[item.key()] = item.value().grad();  // not HF's buffers (deepseek_v3)
  }
  return to_hf_names(grads, model->config());
}

double grad_norm(CausalLM& model) {
  double sum = 0;
  for (const auto& p : model->parameters()) {
    if (p.requires_grad()) sum += p.grad().to(torch::kDouble).pow(2).sum().item<double>();
  }
  return std::sqrt(sum);
}

class HfFixture : public ::testing::TestWithParam<std::string> {};

// A fixture and the attention kernel that computes it.
class HfFixtureKernel : public ::testing::TestWithParam<std::tuple<std::string, AttentionKernel>> {
 protected:
  Fixture open() { return open_fixture(std::get<0>(GetParam()), std::get<1>(GetParam())); }
};

TEST_P(HfFixtureKernel, LogitsAndHiddenStatesMatchHuggingFace) {
  Fixture f = open();
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> hidden;
  torch::Tensor logits = f.model->forward_with_hidden_states(f.ref.at("input_ids"), &hidden);
  EXPECT_LT(max_abs_diff(logits, f.ref.at("logits")), 1e-4);
  ASSERT_EQ(hidden.size(), static_cast<size_t>(f.model->config().num_hidden_layers + 1));
  for (size_t i = 0; i < hidden.size(); ++i) {
    EXPECT_LT(max_abs_diff(hidden[i], f.ref.at("hidden_states." + std::to_string(i))), 1e-4)
        << "hidden_states." << i;
  }
}

TEST_P(HfFixture, RopeInverseFrequenciesMatch) {
  Fixture f = open_fixture(GetParam());
  if (f.ref.count("rope.sliding_attention.inv_freq")) {
    // One RoPE per layer type (gemma3): the global layers' is the config's, the sliding layers'
    // local_rope_theta's, unscaled.
    ModelConfig local = f.model->config();
    ASSERT_GT(local.local_rope_theta, 0);
    local.rope_theta = local.local_rope_theta;
    local.rope_scaling.reset();
    torch::Tensor ours = rope_inv_freq(local), theirs = f.ref.at("rope.sliding_attention.inv_freq");
    EXPECT_TRUE(torch::allclose(ours, theirs, /*rtol=*/1e-6, /*atol=*/0)) << ours << theirs;
    ours = rope_inv_freq(f.model->config());
    theirs = f.ref.at("rope.full_attention.inv_freq");
    EXPECT_TRUE(torch::allclose(ours, theirs, /*rtol=*/1e-6, /*atol=*/0)) << ours << theirs;
    return;
  }
  if (!f.ref.count("rope.inv_freq")) GTEST_SKIP() << "learned positions";
  // rope.inv_freq is the buffer as the reference forward used it (its positions reach the input's
  // length); where that forward rewrote it (dynamic, longrope), rope.inv_freq.initial is HF's at load.
  const int64_t length = f.ref.at("input_ids").size(1);
  torch::Tensor ours = rope_inv_freq(f.model->config(), length);
  torch::Tensor theirs = f.ref.at("rope.inv_freq");
  EXPECT_TRUE(torch::allclose(ours, theirs, /*rtol=*/1e-6, /*atol=*/0)) << ours << theirs;
  if (f.ref.count("rope.inv_freq.initial")) {
    ours = rope_inv_freq(f.model->config());
    theirs = f.ref.at("rope.inv_freq.initial");
    EXPECT_TRUE(torch::allclose(ours, theirs, /*rtol=*/1e-6, /*atol=*/0)) << ours << theirs;
  }
}

TEST_P(HfFixtureKernel, LossGradientsAndGradNormMatch) {
  Fixture f = open();
  torch::Tensor ids = f.ref.at("input_ids");
  torch::Tensor loss = causal_lm_loss(f.model->forward(ids), ids);
  // Mixtral's reference loss has no aux term (output_router_logits false in its config).
  const float ref_loss = f.ref.at("loss").item<float>();
  EXPECT_NEAR(loss.item<float>(), ref_loss, 1e-5 * ref_loss);
  EXPECT_NEAR(loss.item<double>(), f.json["training"]["loss"].get<double>(), 1e-5 * ref_loss);
  loss.backward();
  const double ref_norm = f.json["training"]["grad_norm"].get<double>();
  EXPECT_NEAR(grad_norm(f.model), ref_norm, 1e-5 * ref_norm);
  auto grads = hf_gradients(f.model);
  auto params = f.model->named_parameters();
  for (const auto& name : f.json["training"]["stored_grads"]) {
    std::string key = name.get<std::string>();
    torch::Tensor ref = f.ref.at(key);
    const std::string hf = key.substr(5);  // drop "grad."
    double scale = ref.abs().max().item<double>();
    if (grads.count(hf)) {
      EXPECT_LT(max_abs_diff(grads.at(hf), ref), 1e-4 * scale) << key;
      continue;
    }
    // transformers 5 names some modules in memory unlike their checkpoint names (gpt_neox's
    // embed_out is lm_head): compare in forma's names, where those agree.
    for (const auto& [forma_name, part] : from_hf_names({{hf, ref}}, f.model->config())) {
      ASSERT_TRUE(params.contains(forma_name)) << key << " names no parameter (" << forma_name << ")";
      EXPECT_LT(max_abs_diff(params[forma_name].grad(), part), 1e-4 * scale) << key;
    }
  }
}

TEST_P(HfFixtureKernel, GreedyDecodingWithKVCacheMatchesHuggingFace) {
  Fixture f = open();
  torch::NoGradGuard no_grad;
  torch::Tensor sequence = f.ref.at("generation.sequence");  // [1, 24]
  torch::Tensor step_logits = f.ref.at("generation.step_logits");  // [8, V]
  const int64_t prompt = 16, steps = step_logits.size(0);
  KVCache cache(f.model->config(), prompt + steps);
  torch::Tensor logits = f.model->forward(sequence.slice(1, 0, prompt), &cache);
  torch::Tensor full = f.model->forward(sequence);  // no cache, all 24 positions
  // Where the rope frequencies change with the length (dynamic NTK), HF's cached keys keep the
  // older ones, so the cached run equals HF's (step_logits) but not a fresh 24-token forward.
  const ModelConfig& config = f.model->config();
  const bool same_rope = f.ref.count("rope.inv_freq") == 0 ||
                         torch::equal(rope_inv_freq(config, prompt), rope_inv_freq(config, prompt + steps));
  if (same_rope) {
    EXPECT_LT(max_abs_diff(logits[0], full[0].slice(0, 0, prompt)), 1e-4);
  }
  for (int64_t s = 0; s < steps; ++s) {
    torch::Tensor last = logits[0][-1];
    EXPECT_LT(max_abs_diff(last, step_logits[s]), 1e-4) << "step " << s;
    EXPECT_EQ(last.argmax().item<int64_t>(), sequence[0][prompt + s].item<int64_t>()) << "step " << s;
    // feed HF's token (not ours) so that one near-tie cannot derail the remaining steps
    logits = f.model->forward(sequence.slice(1, prompt + s, prompt + s + 1), &cache);
    if (same_rope) {
      EXPECT_LT(max_abs_diff(logits[0][0], full[0][prompt + s]), 1e-4) << "cached step " << s;
    }
  }
  EXPECT_EQ(cache.length(), prompt + steps);
}

TEST_P(HfFixture, SavePretrainedRoundTripsExactlyWithHfNames) {
  Fixture f = open_fixture(GetParam());
  std::string out = test::scratch_dir() + "/saved";
  save_pretrained(f.model, out);
  // Same HF names, shapes and values as the fixture's own file (tied lm_head omitted as HF does).
  auto theirs = load_tensors(f.dir + "/model.safetensors");
  auto ours = load_tensors(out + "/model.safetensors");
  ASSERT_EQ(ours.size(), theirs.size());
  for (const auto& [name, t] : theirs) {
    ASSERT_TRUE(ours.count(name)) << name;
    EXPECT_TRUE(torch::equal(ours.at(name), t)) << name;
  }
  CausalLM again = load_pretrained(out);
  auto a = f.model->named_parameters(), b = again->named_parameters();
  ASSERT_EQ(a.size(), b.size());
  for (const auto& item : a) EXPECT_TRUE(torch::equal(item.value(), b[item.key()])) << item.key();
  ModelConfig c1 = f.model->config(), c2 = again->config();
  EXPECT_EQ(to_hf_json(c1).dump(), to_hf_json(c2).dump());
}

// hf-tiny (transformers 4 configs) and the zoo fixtures of registered architectures (transformers 5),
// less those that use a feature forma refuses (zoo_test.cpp checks the refusal).
std::vector<std::string> fixture_names() {
  std::vector<std::string> names = {"hf-tiny/gpt2", "hf-tiny/llama", "hf-tiny/llama3_rope", "hf-tiny/mistral",
                                    "hf-tiny/qwen2", "hf-tiny/mixtral"};
  for (const auto& zoo : test::zoo_fixtures()) {
    if (zoo.supported) names.push_back("hf-zoo/" + zoo.dir);
  }
  return names;
}

std::string test_name(std::string name) {
  for (char& ch : name) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return name;
}

const auto kFixtures = ::testing::ValuesIn(fixture_names());

INSTANTIATE_TEST_SUITE_P(All, HfFixture, kFixtures, [](const auto& info) { return test_name(info.param); });

INSTANTIATE_TEST_SUITE_P(All, HfFixtureKernel,
                         ::testing::Combine(kFixtures, ::testing::Values(AttentionKernel::Fused,
                                                                         AttentionKernel::Explicit)),
                         [](const auto& info) {
                           return test_name(std::get<0>(info.param)) +
                                  (std::get<1>(info.param) == AttentionKernel::Fused ? "_fused" : "_explicit");
                         });

}  // namespace
}  // namespace forma

// Tensor and sequence parallelism against the single-process model. The launched tests re-run this
// binary as 2 and 4 workers under `forma launch`; every worker computes the one-process logits,
// loss and gradients itself (the plain model, no parallel code) and compares the gathered
// tensor-parallel results with them, on the HF fixtures and on models whose vocabulary needs padding.
#include "forma/parallel/tensor_parallel_model.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>

#include "forma/core/error.h"
#include "forma/core/files.h"
#include "forma/model/hf_io.h"
#include "forma/model/tensor_io.h"
#include "forma/parallel/tensor_parallel_layers.h"
#include "forma/parallel/vocab_parallel_loss.h"
#include "forma/peft/lora_model.h"
#include "test_paths.h"
#include "../model/zoo_fixtures.h"

// A named namespace: unity builds compile several test files as one unit.
namespace forma::tensor_parallel_test {

using test::error_of;

using parallel::DeviceMesh;
using parallel::Dim;
using parallel::MeshShape;
using parallel::ShardSpec;

ModelConfig fixture_config(const std::string& arch) {
  return load_model_config(test::fixture("hf-tiny/" + arch) + "/config.json");
}

// olmo2's q_norm spans every head's q: no rank holds the whole vector, so tp > 1 is refused by name.
TEST(TensorParallelConfig, NormsOverAllHeadsNeedEachKvHeadOnOneRank) {
  ModelConfig c = load_model_config(test::fixture("hf-zoo/olmo2") + "/config.json");
  ASSERT_TRUE(c.qk_norm_whole);
  ASSERT_EQ(c.num_key_value_heads, 4);
  EXPECT_NO_THROW(parallel::check_tensor_parallel_config(c, 2));
  EXPECT_NO_THROW(parallel::check_tensor_parallel_config(c, 4));
  c.num_key_value_heads = 2;  // tp=4 would hold each kv head on two ranks: its squares counted twice
  std::string error = error_of([&] { parallel::check_tensor_parallel_config(c, 4); });
  EXPECT_NE(error.find("q/k norms over all attention heads"), std::string::npos) << error;
  EXPECT_NE(error.find("olmo2/config.json"), std::string::npos) << error;
}

TEST(TensorParallelConfig, RejectsSizesThatDoNotSplitTheModel) {
  ModelConfig c = fixture_config("llama");  // 4 heads, 2 kv heads, intermediate 128, vocab 320
  EXPECT_NO_THROW(parallel::check_tensor_parallel_config(c, 2));
  EXPECT_NO_THROW(parallel::check_tensor_parallel_config(c, 4));  // kv heads replicated
  std::string heads = error_of([&] { parallel::check_tensor_parallel_config(c, 3); });
  EXPECT_NE(heads.find("num_attention_heads=4 is not divisible by tensor_parallel=3"), std::string::npos) << heads;
  EXPECT_NE(heads.find("config.json"), std::string::npos) << heads;

  ModelConfig kv = c;
  kv.num_attention_heads = 12;
  kv.num_key_value_heads = 3;
  std::string kv_error = error_of([&] { parallel::check_tensor_parallel_config(kv, 2); });
  EXPECT_NE(kv_error.find("num_key_value_heads=3 and tensor_parallel=2"), std::string::npos) << kv_error;

  ModelConfig ffn = c;
  ffn.intermediate_size = 130;
  std::string ffn_error = error_of([&] { parallel::check_tensor_parallel_config(ffn, 4); });
  EXPECT_NE(ffn_error.find("intermediate_size=130"), std::string::npos) << ffn_error;

  ModelConfig vocab = c;
  vocab.vocab_size = 321;  // padded: 81 ids on ranks 0-2, 78 on rank 3
  EXPECT_NO_THROW(parallel::check_tensor_parallel_config(vocab, 4));
  vocab.vocab_size = 5;    // ceil(5/4) = 2 ids per rank leaves rank 3 none
  std::string vocab_error = error_of([&] { parallel::check_tensor_parallel_config(vocab, 4); });
  EXPECT_NE(vocab_error.find("vocab_size=5 is too small"), std::string::npos) << vocab_error;
}

TEST(TensorParallelShards, SlicesPadAndReplicateAsPlanned) {
  torch::Tensor full = torch::arange(10, torch::kFloat).reshape({5, 2});
  ShardSpec rows{0, 5, 1, false};
  EXPECT_TRUE(torch::equal(parallel::shard_tensor(full, rows, 2, 0), full.narrow(0, 0, 3)));
  // Rank 1: rows 3 and 4, then one zero row of padding.
  torch::Tensor padded = torch::tensor({6.f, 7.f, 8.f, 9.f, 0.f, 0.f}).reshape({3, 2});
  EXPECT_TRUE(torch::equal(parallel::shard_tensor(full, rows, 2, 1), padded));
  // Columns, evenly.
  ShardSpec cols{1, 2, 1, false};
  EXPECT_TRUE(torch::equal(parallel::shard_tensor(full, cols, 2, 1), full.narrow(1, 1, 1)));
  // Two key-value heads of 2 rows over 4 ranks: ranks 0, 1 hold head 0; ranks 2, 3 head 1.
  torch::Tensor kv = torch::arange(8, torch::kFloat).reshape({4, 2});
  ShardSpec replicated{0, 4, 2, true};
  for (int r = 0; r < 4; ++r) {
    EXPECT_TRUE(torch::equal(parallel::shard_tensor(kv, replicated, 4, r), kv.narrow(0, r / 2 * 2, 2))) << r;
  }
  ShardSpec whole{-1, 0, 4, false};
  EXPECT_TRUE(torch::equal(parallel::shard_tensor(kv, whole, 4, 3), kv));
}

// A group of one rank: the parallel layers must be the ordinary ones, bit for bit.
TEST(TensorParallelOneRank, ParallelLayersAreOrdinaryLayers) {
  parallel::DistEnv env;
  env.master_port = 0;  // one rank hosts its own store: any free port
  DeviceMesh mesh(env, MeshShape{});
  const std::string dir = test::fixture("hf-tiny/mixtral");
  CausalLM plain = load_pretrained(dir);
  CausalLM sharded = load_pretrained(dir);
  auto plan = parallel::parallelize_tensor(sharded, mesh.group(Dim::tp), {/*sequence_parallel=*/true});
  torch::Tensor ids = load_tensors(dir + "/reference.safetensors").at("input_ids");
  torch::Tensor expected = plain->forward(ids);
  torch::Tensor logits = sharded->forward(ids);
  EXPECT_TRUE(torch::equal(logits, expected));
  torch::Tensor targets = ids.slice(1, 1);
  torch::Tensor loss = parallel::tensor_parallel_loss(plan, logits.slice(1, 0, -1), targets);
  EXPECT_NEAR(loss.item<double>(), causal_lm_loss(expected, ids).item<double>(), 1e-6);
  auto weights = parallel::gather_hf_state_dict(sharded, plan);
  for (const auto& [name, t] : hf_state_dict(plain)) EXPECT_TRUE(torch::equal(weights.at(name), t)) << name;
}

// ---- launched workers ----

DeviceMesh& worker_mesh() {
  static DeviceMesh mesh = [] {
    auto env = parallel::detect_dist_env();
    MeshShape shape;
    shape.tp = env.world_size;
    return DeviceMesh(env, shape);
  }();
  return mesh;
}

// max |a - b| / scale, with one scale per tensor (its max |b|) so that tiny entries of a large tensor
// do not dominate, but at least `floor`: gradients that are zero in exact arithmetic (a key bias
// under softmax) are fp32 noise in both runs.
double relative_diff(const torch::Tensor& a, const torch::Tensor& b, double floor = 0) {
  EXPECT_EQ(a.sizes(), b.sizes());
  if (a.sizes() != b.sizes()) return INFINITY;
  torch::Tensor a64 = a.to(torch::kDouble), b64 = b.to(torch::kDouble);
  const double scale = std::max(b64.abs().max().item<double>(), floor);
  return (a64 - b64).abs().max().item<double>() / std::max(scale, 1e-30);
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  if (a.sizes() != b.sizes()) return INFINITY;
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

// `reference` and `sharded` hold the same weights; the first runs in this process alone.
void expect_parallel_run_matches(CausalLM reference, CausalLM sharded, const torch::Tensor& ids, bool sequence_parallel,
                                 bool recompute = false) {
  DeviceMesh& mesh = worker_mesh();
  const int tp = mesh.size(Dim::tp);
  const StateDict full_weights = hf_state_dict(reference);
  torch::Tensor expected_logits = reference->forward(ids);
  torch::Tensor expected_loss = causal_lm_loss(expected_logits, ids) + reference->aux_loss();
  expected_loss.backward();
  double expected_norm = 0;
  for (const auto& p : reference->parameters()) {
    if (p.grad().defined()) expected_norm += p.grad().to(torch::kDouble).pow(2).sum().item<double>();
  }
  expected_norm = std::sqrt(expected_norm);

  auto plan = parallel::parallelize_tensor(sharded, mesh.group(Dim::tp), {sequence_parallel});
  sharded->set_gradient_checkpointing(recompute);
  torch::Tensor logits = sharded->forward(ids);
  const int64_t vocab = reference->config().vocab_size;
  EXPECT_LE(logits.size(-1), (vocab + tp - 1) / tp) << "a rank holds more than its vocabulary slice";
  torch::Tensor loss = parallel::tensor_parallel_loss(plan, logits.slice(1, 0, -1), ids.slice(1, 1)) + sharded->aux_loss();
  loss.backward();
  parallel::sync_tensor_parallel_grads(sharded, plan);

  // fp32 noise: the ranks sum partial products in another order than one process does, and two
  // layers (mixtral's routing too) carry it to the logits (|logits| ~6). Largest measured with the
  // fused attention kernel: 1.14e-5 on mixtral's logits, 1.1e-5 relative on gpt2's k_proj.bias
  // gradient (zero in exact arithmetic, so all noise); with the explicit kernel 6.7e-6 and 5.9e-6.
  // A wrong shard or a missing reduction is off by orders of magnitude more.
  constexpr double kTolerance = 2e-5;
  EXPECT_LT(max_abs_diff(parallel::gather_logits(plan, logits.detach()), expected_logits.detach()), kTolerance);
  EXPECT_LT(std::abs(loss.item<double>() - expected_loss.item<double>()), 1e-5 * std::max(1.0, expected_loss.item<double>()));
  StateDict grads = parallel::gather_full_parameters(sharded, plan, /*gradients=*/true);
  double largest = 0;  // the model's largest gradient entry
  for (const auto& p : reference->parameters()) {
    if (p.grad().defined()) largest = std::max(largest, p.grad().abs().max().item<double>());
  }
  for (const auto& p : reference->named_parameters()) {
    torch::Tensor expected = p.value().grad().defined() ? p.value().grad() : torch::zeros_like(p.value());
    EXPECT_LT(relative_diff(grads.at(p.key()), expected, 1e-2 * largest), kTolerance)
        << "gradient of " << p.key() << ": max |diff| " << max_abs_diff(grads.at(p.key()), expected)
        << ", max |expected| " << expected.abs().max().item<double>() << ", largest in the model " << largest;
  }
  const double norm = parallel::tensor_parallel_grad_norm(sharded, plan);
  EXPECT_LT(std::abs(norm - expected_norm), 1e-5 * expected_norm);
  // The inverse of the sharding: the gathered weights are the original ones exactly.
  StateDict gathered = parallel::gather_hf_state_dict(sharded, plan);
  // hf_state_dict leaves LoRA adapters out; the gathered parameters hold them.
  EXPECT_EQ(std::count_if(gathered.begin(), gathered.end(),
                          [](const auto& entry) { return !peft::is_lora_parameter(entry.first); }),
            static_cast<std::ptrdiff_t>(full_weights.size()));
  for (const auto& [name, t] : full_weights) {
    ASSERT_TRUE(gathered.count(name)) << name;
    EXPECT_TRUE(torch::equal(gathered.at(name), t)) << "weight " << name;
  }
}

// Worker tests run only when launched (FORMA_TP_WORKER set); the parameter: sequence parallel.
class TensorParallelWorker : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (!std::getenv("FORMA_TP_WORKER")) GTEST_SKIP() << "runs only as a launched worker";
    torch::set_num_threads(1);
  }
};

class TensorParallelWorkerLoss : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::getenv("FORMA_TP_WORKER")) GTEST_SKIP() << "runs only as a launched worker";
  }
};

// hf-tiny's and every hf-zoo fixture forma runs: the registry's architectures cannot skip this.
TEST_P(TensorParallelWorker, FixturesMatchOneProcess) {
  std::vector<std::string> fixtures = {"hf-tiny/llama", "hf-tiny/mixtral", "hf-tiny/gpt2", "hf-tiny/qwen2",
                                       "hf-tiny/mistral"};
  for (const auto& zoo : test::zoo_fixtures()) {
    if (zoo.supported) fixtures.push_back("hf-zoo/" + zoo.dir);
  }
  const int tp = worker_mesh().size(Dim::tp);
  for (const auto& arch : fixtures) {
    SCOPED_TRACE(arch + (GetParam() ? " with sequence parallel" : ""));
    const std::string dir = test::fixture(arch);
    // The RoPE-scaling fixtures have 2 heads: run at tp=2, not at tp=4 (refused by name, tested elsewhere).
    if (load_model_config(dir).num_attention_heads % tp != 0) continue;
    torch::Tensor ids = load_tensors(dir + "/reference.safetensors").at("input_ids");  // [2, 16]
    expect_parallel_run_matches(load_pretrained(dir), load_pretrained(dir), ids, GetParam());
  }
}

// Activation checkpointing re-runs each layer's forward (and its collectives) inside backward.
TEST_P(TensorParallelWorker, RecomputedLayersMatchOneProcess) {
  for (const char* arch : {"llama", "gpt2"}) {
    SCOPED_TRACE(std::string(arch) + (GetParam() ? " with sequence parallel" : "") + ", recomputed");
    const std::string dir = test::fixture(std::string("hf-tiny/") + arch);
    torch::Tensor ids = load_tensors(dir + "/reference.safetensors").at("input_ids");
    expect_parallel_run_matches(load_pretrained(dir), load_pretrained(dir), ids, GetParam(), /*recompute=*/true);
  }
}

// 321 ids: the vocabulary is padded (tp=2: 161 + 160 ids; tp=4: 81 x 3 + 78); gpt2 ties lm_head.
TEST_P(TensorParallelWorker, PaddedVocabularyMatchesOneProcess) {
  for (const char* arch : {"llama", "gpt2"}) {
    SCOPED_TRACE(std::string(arch) + (GetParam() ? " with sequence parallel" : ""));
    ModelConfig config = fixture_config(arch);
    config.vocab_size = 321;
    CausalLM reference(config), sharded(config);
    reference->init_weights(7);
    sharded->init_weights(7);
    torch::manual_seed(3);
    torch::Tensor ids = torch::randint(0, 321, {2, 8}, torch::kLong);
    ids[0][3] = 320;  // the last id, on the last rank's short slice
    expect_parallel_run_matches(reference, sharded, ids, GetParam());
  }
}

// Qwen2-MoE with a dense layer (mlp_only_layers [0], its own width 48) before a sparse one with the
// shared expert: the dense MLP splits like a dense model's, the sparse block like Mixtral's.
TEST_P(TensorParallelWorker, MoeWithDenseLayersMatchesOneProcess) {
  SCOPED_TRACE(GetParam() ? "with sequence parallel" : "");
  nlohmann::json j = nlohmann::json::parse(read_file(test::fixture("hf-zoo/qwen2_moe") + "/config.json"));
  j["mlp_only_layers"] = {0};
  j["intermediate_size"] = 48;
  const ModelConfig config = parse_model_config(j, "qwen2_moe with a dense layer");
  ASSERT_EQ(config.sparse_layers, (std::vector<bool>{false, true}));
  CausalLM reference(config), sharded(config);
  reference->init_weights(7);
  sharded->init_weights(7);
  torch::manual_seed(3);
  torch::Tensor ids = torch::randint(0, config.vocab_size, {2, 8}, torch::kLong);
  expect_parallel_run_matches(reference, sharded, ids, GetParam());
}

// LoRA on every linear of multi-head latent attention: adapters on the whole latent projections
// (q_a_proj, kv_a_proj_with_mqa) stay whole with partial gradients, those on the up-projections
// and o_proj split with their base layers. deepseek_v2 has q_proj, deepseek_v3 q_a_proj/q_b_proj.
TEST_P(TensorParallelWorker, LoraOnLatentAttentionMatchesOneProcess) {
  peft::LoraConfig lora;
  lora.enabled = true;
  lora.r = 2;
  lora.alpha = 4;
  lora.init = "random";  // B non-zero: A's gradients too
  lora.target_modules = {"q_proj", "q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj", "o_proj"};
  const int tp = worker_mesh().size(Dim::tp);
  for (const char* arch : {"deepseek_v2", "deepseek_v3"}) {
    SCOPED_TRACE(std::string(arch) + (GetParam() ? " with sequence parallel" : ""));
    const std::string dir = test::fixture(std::string("hf-zoo/") + arch);
    if (load_model_config(dir).num_attention_heads % tp != 0) continue;
    CausalLM reference = load_pretrained(dir), sharded = load_pretrained(dir);
    torch::manual_seed(5);
    peft::apply_lora(reference, lora, arch);
    torch::manual_seed(5);
    peft::apply_lora(sharded, lora, arch);
    torch::Tensor ids = load_tensors(dir + "/reference.safetensors").at("input_ids");
    expect_parallel_run_matches(reference, sharded, ids, GetParam());
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, TensorParallelWorker, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "SequenceParallel" : "TensorParallel";
                         });

TEST_F(TensorParallelWorkerLoss, VocabParallelCrossEntropyMatchesTorch) {
  DeviceMesh& mesh = worker_mesh();
  const auto& group = mesh.group(Dim::tp);
  const int tp = mesh.size(Dim::tp);
  for (int64_t vocab : {64, 37}) {
    SCOPED_TRACE("vocabulary of " + std::to_string(vocab));
    torch::manual_seed(11);  // the same full logits and targets on every rank
    torch::Tensor full = (torch::randn({3, 5, vocab}) * 4).requires_grad_(true);
    torch::Tensor targets = torch::randint(0, vocab, {3, 5}, torch::kLong);
    targets[1][2] = -100;
    targets[2][0] = -100;
    torch::Tensor expected = torch::nn::functional::cross_entropy(
        full.reshape({-1, vocab}), targets.reshape({-1}),
        torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100));
    expected.backward();

    const int64_t slice = (vocab + tp - 1) / tp, start = mesh.coord(Dim::tp) * slice;
    torch::Tensor local = full.detach().narrow(-1, start, std::min(slice, vocab - start)).clone().requires_grad_(true);
    torch::Tensor loss = parallel::vocab_parallel_cross_entropy(local, targets, group, start, vocab);
    loss.backward();
    EXPECT_LT(std::abs(loss.item<double>() - expected.item<double>()), 1e-6);
    torch::Tensor grad = parallel::gather_vocab_logits(local.grad(), group, vocab);
    EXPECT_LT(max_abs_diff(grad, full.grad()), 1e-7);
  }
}

test::CommandResult launch_workers(int nproc) {
  std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  return test::run_command("FORMA_TP_WORKER=1 OMP_NUM_THREADS=1 " + test::forma_binary() + " launch --nproc-per-node " +
                           std::to_string(nproc) + " -- " + self +
                           " --gtest_filter='*TensorParallelWorker*'");
}

void expect_workers_passed(const test::CommandResult& r, int nproc) {
  EXPECT_EQ(r.exit_code, 0) << r.output;
  for (int rank = 0; rank < nproc; ++rank) {
    EXPECT_NE(r.output.find("[rank " + std::to_string(rank) + "] [  PASSED  ] 11 tests"), std::string::npos) << r.output;
  }
}

TEST(TensorParallel, TwoRanksMatchOneProcess) { expect_workers_passed(launch_workers(2), 2); }

// 2 key-value heads over 4 ranks: each is replicated on two ranks.
TEST(TensorParallel, FourRanksWithReplicatedKvHeadsMatchOneProcess) {
  expect_workers_passed(launch_workers(4), 4);
}

}  // namespace forma::tensor_parallel_test

// OLMoE, Qwen2-MoE and Qwen3-MoE beyond the registry-driven fixture suite (hf_fixture_test.cpp runs
// hf-zoo/olmoe, qwen2_moe, qwen3_moe as transformers wrote them): the configs written back under
// transformers' names, the routing options the fixtures do not exercise (top-k weights
// renormalised or not, clip_qkv after OLMoE's q/k norms) and dense layers among sparse ones
// against transformers itself, the shared expert's parameters in the counts and the LoRA plan,
// and what is refused.
#include <gtest/gtest.h>

#include <cstdlib>
#include <set>

#include "forma/core/files.h"
#include "forma/model/causal_lm.h"
#include "forma/model/config.h"
#include "forma/model/hf_io.h"
#include "forma/model/model_stats.h"
#include "forma/model/tensor_io.h"
#include "forma/peft/lora_model.h"
#include "forma/peft/lora_plan.h"
#include "test_paths.h"

namespace forma {
namespace {

using nlohmann::json;

TEST(MoeZoo, ConfigsWriteBackTransformersFieldNames) {
  for (const char* dir : {"olmoe", "qwen2_moe"}) {
    SCOPED_TRACE(dir);
    const std::string path = test::fixture(std::string("hf-zoo/") + dir);
    const json theirs = json::parse(read_file(path + "/config.json"));
    const ModelConfig c = load_model_config(path);
    EXPECT_FALSE(c.moe_renormalize);  // both fixtures: norm_topk_prob false
    const json ours = to_hf_json(c);
    for (const auto& [key, value] : theirs.items()) {
      if (key == "rope_parameters") continue;
      ASSERT_TRUE(ours.contains(key)) << key;
      if (value.is_number()) {
        EXPECT_DOUBLE_EQ(ours[key].get<double>(), value.get<double>()) << key;
      } else {
        EXPECT_EQ(ours[key], value) << key;
      }
    }
    EXPECT_EQ(to_hf_json(parse_model_config(ours, "again")).dump(), ours.dump());
  }
  const ModelConfig qwen2_moe = load_model_config(test::fixture("hf-zoo/qwen2_moe"));
  EXPECT_EQ(qwen2_moe.intermediate_size, 16);                 // the experts' (moe_intermediate_size)
  EXPECT_EQ(qwen2_moe.shared_expert_intermediate_size, 32);
  EXPECT_EQ(qwen2_moe.effective_sliding_window(), 0);         // sliding_window 0 with use_sliding_window false
  // qwen3_moe's norm_topk_prob comes back as it was, false (Qwen3MoeConfig's default) included.
  json qwen3 = json::parse(read_file(test::fixture("hf-zoo/qwen3_moe") + "/config.json"));
  qwen3["norm_topk_prob"] = false;
  EXPECT_EQ(to_hf_json(parse_model_config(qwen3, "q3.json"))["norm_topk_prob"], false);
  qwen3.erase("norm_topk_prob");
  EXPECT_FALSE(parse_model_config(qwen3, "q3.json").moe_renormalize);
}

// The fixtures' weights under configs changed in one routing field each, run by forma and by
// transformers (moe_routing_reference.py): the logits agree, and differ from the fixture's own
// (the change matters on these weights, so the comparison can fail). Dense layers among sparse
// ones (mlp_only_layers, decoder_sparse_step) need weights of their own: transformers draws and
// saves them, and forma loads them, counts them and plans LoRA on them.
TEST(MoeZoo, RoutingOptionsAndDenseLayersMatchTransformers) {
  const std::string out = test::scratch_dir();
  const std::string zoo = test::fixture("hf-zoo");
  const json variants = {
      {"olmoe_renorm", {zoo + "/olmoe", {{"norm_topk_prob", true}}, false}},
      {"olmoe_clip", {zoo + "/olmoe", {{"clip_qkv", 0.5}}, false}},
      {"qwen2_moe_renorm", {zoo + "/qwen2_moe", {{"norm_topk_prob", true}}, false}},
      {"qwen3_moe_plain", {zoo + "/qwen3_moe", {{"norm_topk_prob", false}}, false}},
      // Sliding windows of 4 over the 16 tokens. Qwen2-MoE's rule: the even layers below
      // max_window_layers (here layer 0 only), or layer_types as given; Qwen3-MoE's: every layer.
      {"qwen2_moe_sliding",
       {zoo + "/qwen2_moe",
        {{"use_sliding_window", true}, {"sliding_window", 4}, {"max_window_layers", 2}, {"layer_types", nullptr}},
        false}},
      {"qwen2_moe_sliding_types",
       {zoo + "/qwen2_moe",
        {{"use_sliding_window", true},
         {"sliding_window", 4},
         {"layer_types", {"full_attention", "sliding_attention"}}},
        false}},
      {"qwen3_moe_sliding", {zoo + "/qwen3_moe", {{"use_sliding_window", true}, {"sliding_window", 4}}, false}},
      // layer 0 dense of width 48 (the experts' 16, the shared expert's 32), layer 1 sparse
      {"qwen2_moe_dense", {zoo + "/qwen2_moe", {{"mlp_only_layers", {0}}, {"intermediate_size", 48}}, true}},
      // (i + 1) % 2: layer 0 dense (intermediate_size 64), layer 1 sparse
      {"qwen3_moe_step", {zoo + "/qwen3_moe", {{"decoder_sparse_step", 2}}, true}},
  };
  const std::string command = "'" + test::python() + "' '" + test::fixture("../model/moe_routing_reference.py") +
                              "' '" + out + "' '" + variants.dump() + "' > '" + out + "/python.log' 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0) << command << "\n" << read_file(out + "/python.log");
  torch::NoGradGuard no_grad;
  for (const auto& [name, variant] : variants.items()) {
    SCOPED_TRACE(name);
    const std::string fixture = variant[0].get<std::string>();
    const auto ref = load_tensors(fixture + "/reference.safetensors");
    const torch::Tensor theirs = load_tensors(out + "/" + name + "/logits.safetensors").at("logits");
    CausalLM model = load_pretrained(out + "/" + name);
    model->eval();
    const torch::Tensor ours = model->forward(ref.at("input_ids"));
    EXPECT_LT((ours - theirs).abs().max().item<double>(), 1e-4);
    // Written back as transformers' fields, the config reads as the same layers.
    const ModelConfig back = parse_model_config(to_hf_json(model->config()), name);
    EXPECT_EQ(back.use_sliding_window, model->config().use_sliding_window);
    EXPECT_EQ(back.sliding_window, model->config().sliding_window);
    EXPECT_EQ(back.sliding_layers, model->config().sliding_layers);
    if (!variant[2].get<bool>()) {
      EXPECT_GT((theirs - ref.at("logits")).abs().max().item<double>(), 1e-2);
      continue;
    }
    const ModelConfig& c = model->config();
    ASSERT_EQ(c.sparse_layers, (std::vector<bool>{false, true}));
    const auto params = model->named_parameters();
    EXPECT_EQ(params["model.layers.0.mlp.gate_proj.weight"].size(0), c.dense_intermediate_size);
    EXPECT_EQ(params.find("model.layers.0.block_sparse_moe.gate.weight"), nullptr);
    EXPECT_NE(params.find("model.layers.1.block_sparse_moe.gate.weight"), nullptr);
    int64_t hf_total = 0;  // what transformers saved
    for (const auto& [key, tensor] : load_tensors(out + "/" + name + "/model.safetensors")) hf_total += tensor.numel();
    EXPECT_EQ(count_parameters(c).total, hf_total);
    // LoRA's plan names every linear layer the model has, the dense layer's included.
    std::set<std::string> planned;
    for (const auto& l : peft::planned_linears(c)) planned.insert(l.module.name);
    std::set<std::string> built;
    for (const auto& m : peft::linear_modules(model)) built.insert(m.name);
    EXPECT_EQ(planned, built);
    EXPECT_TRUE(planned.count("model.layers.0.mlp.down_proj"));
  }
}

// Qwen2-MoE's shared expert (3 linears of width shared_expert_intermediate_size and a 1-output
// gate per layer) counted by hand and planned for LoRA; the fixture's counts are checked against
// transformers' num_parameters by ModelStats.
TEST(MoeZoo, SharedExpertCountedAndPlannedForLora) {
  const ModelConfig c = load_model_config(test::fixture("hf-zoo/qwen2_moe"));
  ModelConfig without = c;
  without.shared_expert_intermediate_size = 0;
  const int64_t C = c.hidden_size, S = c.shared_expert_intermediate_size, L = c.num_hidden_layers;
  const int64_t shared = L * (3 * C * S + C);
  EXPECT_EQ(count_parameters(c).total - count_parameters(without).total, shared);
  EXPECT_EQ(count_parameters(c).active - count_parameters(without).active, shared);  // every token's
  CausalLM model(c);
  int64_t built = 0;
  for (const auto& p : model->parameters()) built += p.numel();
  EXPECT_EQ(built, count_parameters(c).total);
  int64_t planned = 0;
  for (const auto& l : peft::planned_linears(c)) {
    if (l.module.name.find("shared_expert") == std::string::npos) continue;
    ++planned;
    EXPECT_NE(model->named_modules().find(l.module.name), nullptr) << l.module.name;
    EXPECT_EQ(l.module.hf_name.find("block_sparse_moe"), std::string::npos) << l.module.hf_name;  // HF's mlp.*
  }
  EXPECT_EQ(planned, 4 * L);
}

// HF's rule: layer i is sparse unless in mlp_only_layers or (i + 1) % decoder_sparse_step != 0;
// the fields come back as they were read.
TEST(MoeZoo, DenseLayersFollowDecoderSparseStepAndMlpOnlyLayers) {
  json j = json::parse(read_file(test::fixture("hf-zoo/qwen2_moe") + "/config.json"));
  j["num_hidden_layers"] = 6;
  j["layer_types"] = json(6, "full_attention");
  j["decoder_sparse_step"] = 2;
  j["mlp_only_layers"] = {3, 9};  // 9: no such layer, matches none (as in HF)
  const ModelConfig c = parse_model_config(j, "cfg.json");
  EXPECT_EQ(c.sparse_layers, (std::vector<bool>{false, true, false, false, false, true}));
  EXPECT_EQ(c.dense_intermediate_size, 64);
  const json back = to_hf_json(c);
  EXPECT_EQ(back["decoder_sparse_step"], 2);
  EXPECT_EQ(back["mlp_only_layers"], json({3, 9}));
  EXPECT_EQ(back["intermediate_size"], 64);
  // Set in code (no fields in extra): written as the equivalent mlp_only_layers.
  ModelConfig coded = c;
  coded.extra.erase("decoder_sparse_step");
  coded.extra.erase("mlp_only_layers");
  const json written = to_hf_json(coded);
  EXPECT_EQ(written["decoder_sparse_step"], 1);
  EXPECT_EQ(written["mlp_only_layers"], json({0, 2, 3, 4}));
  EXPECT_EQ(parse_model_config(written, "again").sparse_layers, c.sparse_layers);
  // Every layer sparse: no per-layer list.
  j["decoder_sparse_step"] = 1;
  j["mlp_only_layers"] = json::array();
  EXPECT_TRUE(parse_model_config(j, "cfg.json").sparse_layers.empty());
}

TEST(MoeZoo, RefusesWhatItCannotRunNamingTheField) {
  const json fixture = json::parse(read_file(test::fixture("hf-zoo/qwen2_moe") + "/config.json"));
  auto error = [&](const char* key, const json& value) {
    json j = fixture;
    j[key] = value;
    return test::error_of([&] { parse_model_config(j, "cfg.json"); });
  };
  EXPECT_NE(error("decoder_sparse_step", 0).find("cfg.json: field 'decoder_sparse_step' (0) must be positive"),
            std::string::npos);
  EXPECT_NE(error("mlp_only_layers", 0).find("field 'mlp_only_layers' must be a list"), std::string::npos);
  EXPECT_NE(error("mlp_only_layers", json::array({"a"})).find("field 'mlp_only_layers' entry \"a\""),
            std::string::npos);
  EXPECT_NE(error("shared_expert_intermediate_size", 0).find("field 'shared_expert_intermediate_size'"),
            std::string::npos);
  EXPECT_NE(error("norm_topk_prob", "yes").find("field 'norm_topk_prob' must be true or false"), std::string::npos);
  json olmoe = json::parse(read_file(test::fixture("hf-zoo/olmoe") + "/config.json"));
  olmoe["clip_qkv"] = -1;
  EXPECT_NE(test::error_of([&] { parse_model_config(olmoe, "o.json"); }).find("o.json: field 'clip_qkv' (-1)"),
            std::string::npos);
}

}  // namespace
}  // namespace forma

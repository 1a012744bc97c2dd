// Qwen3-MoE beyond the registry-driven fixture suite (hf_fixture_test.cpp runs hf-zoo/qwen3_moe):
// the config written back under transformers' names (the dense intermediate_size kept beside the
// experts' moe_intermediate_size), and the settings forma refuses, by field.
#include <gtest/gtest.h>

#include "forma/core/files.h"
#include "forma/model/config.h"
#include "test_paths.h"

namespace forma {
namespace {

using nlohmann::json;

TEST(Qwen3Moe, ConfigWritesBackTransformersFieldNames) {
  const std::string path = test::fixture("hf-zoo/qwen3_moe");
  const json theirs = json::parse(read_file(path + "/config.json"));
  const ModelConfig c = load_model_config(path);
  EXPECT_EQ(c.intermediate_size, theirs["moe_intermediate_size"].get<int64_t>());  // the experts' width
  const json ours = to_hf_json(c);
  for (const auto& [key, value] : theirs.items()) {
    if (key == "rope_parameters" || key == "num_local_experts") continue;
    ASSERT_TRUE(ours.contains(key)) << key;
    if (value.is_number()) {
      EXPECT_DOUBLE_EQ(ours[key].get<double>(), value.get<double>()) << key;
    } else {
      EXPECT_EQ(ours[key], value) << key;
    }
  }
  // transformers 5 wrote num_local_experts; forma writes Qwen's own name, which both versions read.
  EXPECT_EQ(ours["num_experts"], theirs["num_local_experts"]);
  EXPECT_EQ(to_hf_json(parse_model_config(ours, "again")).dump(), ours.dump());
}

TEST(Qwen3Moe, RefusesWhatItCannotRunNamingTheField) {
  const json fixture = json::parse(read_file(test::fixture("hf-zoo/qwen3_moe") + "/config.json"));
  auto error = [&](const char* key, const json& value) {
    json j = fixture;
    if (value.is_null()) {
      j.erase(key);
    } else {
      j[key] = value;
    }
    return test::error_of([&] { parse_model_config(j, "cfg.json"); });
  };
  // norm_topk_prob false is run (moe_renormalize; MoeZoo.RoutingOptionsAndDenseLayersMatchTransformers).
  EXPECT_EQ(error("norm_topk_prob", false), "(no error)");
  // Dense layers are run (MoeZoo.RoutingOptionsAndDenseLayersMatchTransformers).
  EXPECT_NE(error("decoder_sparse_step", 0).find("field 'decoder_sparse_step' (0)"), std::string::npos);
  EXPECT_EQ(error("mlp_only_layers", json::array({0})), "(no error)");
  // A sliding window is run (MoeZoo.RoutingOptionsAndDenseLayersMatchTransformers).
  EXPECT_EQ(error("use_sliding_window", true), "(no error)");
  EXPECT_NE(error("use_sliding_window", "yes").find("field 'use_sliding_window'"), std::string::npos);
  EXPECT_EQ(error("mlp_only_layers", json::array()), "(no error)");
}

}  // namespace
}  // namespace forma

// RoPE scaling kinds (config.h RopeScaling) against transformers' own initialisers
// (rope_scaling_reference.py) on configs the hf-zoo fixtures leave out: yarn with mscale, an explicit
// attention_factor, truncate false and partial rotary; dynamic NTK and longrope at lengths on both
// sides of their switch points. The fixtures llama_rope_yarn, llama_rope_dynamic and phi3_longrope
// check whole models against transformers (hf_fixture_test.cpp).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "forma/core/error.h"
#include "forma/core/files.h"
#include "forma/model/config.h"
#include "forma/model/rope.h"
#include "forma/model/tensor_io.h"
#include "python_oracle.h"

namespace forma {
namespace {

TEST(RopeScaling, FrequenciesAndAttentionFactorMatchTransformers) {
  const std::string dir = test::python_oracle_output("rope_scaling_reference.py");
  const auto cases = nlohmann::json::parse(read_file(dir + "/cases.json"));
  const auto ref = load_tensors(dir + "/rope.safetensors");
  ASSERT_EQ(cases.size(), 6u);
  for (const auto& [name, test_case] : cases.items()) {
    const ModelConfig loaded = parse_model_config(test_case.at("config"), name);
    // What forma writes back reads as the same RoPE.
    const ModelConfig again = parse_model_config(to_hf_json(loaded), name + " (saved)");
    for (const ModelConfig* c : {&loaded, &again}) {
      for (int64_t length : test_case.at("lengths").get<std::vector<int64_t>>()) {
        const std::string key = name + "." + std::to_string(length);
        torch::Tensor theirs = ref.at(key + ".inv_freq"), ours = rope_inv_freq(*c, length);
        EXPECT_TRUE(torch::allclose(ours, theirs, /*rtol=*/1e-6, /*atol=*/0)) << key << "\n" << ours << theirs;
        EXPECT_NEAR(rope_attention_factor(*c), ref.at(key + ".attention_factor").item<double>(), 1e-12) << key;
      }
    }
  }
}

nlohmann::json phi3_longrope(const nlohmann::json& rope) {
  return {{"model_type", "phi3"},       {"hidden_size", 64},  {"num_attention_heads", 4}, {"num_hidden_layers", 1},
          {"vocab_size", 64},           {"intermediate_size", 32}, {"max_position_embeddings", 256},
          {"original_max_position_embeddings", 64}, {"rope_scaling", rope}};
}

TEST(RopeScaling, Phi3ReadsTheOlderSuAndYarnNamesAsLongrope) {
  const std::vector<double> eight(8, 1.0);
  for (const char* kind : {"su", "yarn", "longrope"}) {
    ModelConfig c = parse_model_config(phi3_longrope({{"type", kind}, {"short_factor", eight}, {"long_factor", eight}}),
                                       "phi3.json");
    ASSERT_TRUE(c.rope_scaling.has_value());
    EXPECT_EQ(c.rope_scaling->rope_type, "longrope") << kind;
    // Phi3Config's own original_max_position_embeddings is the switch point.
    EXPECT_EQ(c.rope_scaling->original_max_position_embeddings, 64);
    EXPECT_TRUE(rope_depends_on_length(c));
  }
}

TEST(RopeScaling, BadLongropeFactorsAreRefusedNamingTheField) {
  // head_dim 16: 8 frequencies, so 8 factors each.
  const std::vector<double> eight(8, 1.0), seven(7, 1.0);
  ModelConfig c = parse_model_config(phi3_longrope({{"type", "longrope"}, {"short_factor", eight}, {"long_factor", seven}}),
                                     "phi3.json");
  try {
    rope_inv_freq(c);  // the short set is fine; the long one is checked as well
    FAIL() << "7 long factors for 8 frequencies were accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("rope_scaling.long_factor"), std::string::npos) << e.what();
  }
  try {
    parse_model_config(phi3_longrope({{"type", "longrope"}, {"short_factor", eight}, {"long_factor", {1.0, -2.0}}}),
                       "phi3.json");
    FAIL() << "a negative factor was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("long_factor"), std::string::npos) << e.what();
  }
  try {
    parse_model_config(phi3_longrope({{"type", "dynamic"}, {"factor", 2.0}}), "phi3.json");
    FAIL() << "phi3 accepted a dynamic RoPE";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("rope_scaling.rope_type"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace forma

// Granite, OLMo and Nemotron beyond the registry-driven fixture suite (hf_fixture_test.cpp runs
// their hf-zoo fixtures): the config fields each spec reads, written back under transformers'
// names; the defaults of a config that gives sizes only, against what transformers' AutoConfig
// makes of the same file (granite_olmo_nemotron_reference.py); refusals naming the field; and
// init_weights giving identity norms (Nemotron's LayerNorm1P) and no norm parameters (OLMo).
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "forma/core/files.h"
#include "forma/model/causal_lm.h"
#include "forma/model/config.h"
#include "forma/model/norm.h"
#include "test_paths.h"

namespace forma {
namespace {

using nlohmann::json;

// Every field of the HF-written fixture config comes back from forma's writer with the same value
// (RoPE excepted: forma writes transformers 4's spelling, which version 5 reads too).
TEST(GraniteOlmoNemotron, ConfigsWriteBackTransformersFieldNames) {
  for (const char* dir : {"granite", "olmo", "nemotron"}) {
    const std::string path = test::fixture(std::string("hf-zoo/") + dir);
    const json theirs = json::parse(read_file(path + "/config.json"));
    const json ours = to_hf_json(load_model_config(path));
    for (const auto& [key, value] : theirs.items()) {
      if (key == "rope_parameters") continue;
      ASSERT_TRUE(ours.contains(key)) << dir << ": " << key;
      if (value.is_number()) {
        EXPECT_DOUBLE_EQ(ours[key].get<double>(), value.get<double>()) << dir << ": " << key;
      } else {
        EXPECT_EQ(ours[key], value) << dir << ": " << key;
      }
    }
    EXPECT_DOUBLE_EQ(ours["rope_theta"].get<double>(), theirs["rope_parameters"]["rope_theta"].get<double>());
  }
  // Nemotron's partial rotary lives in rope_parameters in version 5's file.
  const json nemotron = to_hf_json(load_model_config(test::fixture("hf-zoo/nemotron")));
  EXPECT_EQ(nemotron["partial_rotary_factor"], 0.5);
  // OLMo has no norm epsilon field (OlmoLayerNorm fixes 1e-5): none is invented.
  const json olmo = to_hf_json(load_model_config(test::fixture("hf-zoo/olmo")));
  EXPECT_FALSE(olmo.contains("rms_norm_eps"));
  EXPECT_FALSE(olmo.contains("layer_norm_eps"));
}

// A config with sizes only: forma's defaults are transformers' defaults.
TEST(GraniteOlmoNemotron, DefaultsMatchTransformersAutoConfig) {
  const std::string dir = test::scratch_dir();
  const std::string command = "'" + test::python() + "' '" +
                              test::fixture("../model/granite_olmo_nemotron_reference.py") + "' '" + dir +
                              "' > '" + dir + "/python.log' 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0) << command << "\n" << read_file(dir + "/python.log");
  const json hf = json::parse(read_file(dir + "/defaults.json"));
  for (const char* type : {"granite", "olmo", "nemotron"}) {
    SCOPED_TRACE(type);
    const json& h = hf[type];
    const ModelConfig c = load_model_config(dir + "/" + type);
    EXPECT_DOUBLE_EQ(c.rope_theta, h["rope_theta"].get<double>());
    EXPECT_DOUBLE_EQ(c.partial_rotary_factor, h["partial_rotary_factor"].get<double>());
    EXPECT_DOUBLE_EQ(c.norm_eps, h["norm_eps"].get<double>());
    EXPECT_EQ(c.hidden_act, h["hidden_act"].get<std::string>());
    EXPECT_EQ(c.tie_word_embeddings, h["tie_word_embeddings"].get<bool>());
    EXPECT_EQ(c.attention_bias, h["attention_bias"].get<bool>());
    if (h.contains("mlp_bias")) {
      EXPECT_EQ(c.mlp_bias, h["mlp_bias"].get<bool>());
    }
    if (h["bos_token_id"].is_null()) {
      EXPECT_FALSE(c.bos_token_id.has_value());
    } else {
      EXPECT_EQ(c.bos_token_id, h["bos_token_id"].get<int64_t>());
    }
    EXPECT_EQ(c.eos_token_id, std::vector<int64_t>{h["eos_token_id"].get<int64_t>()});
    // NemotronConfig leaves num_key_value_heads null (its attention then cannot be built); forma
    // reads null as one kv head per query head, as the other types do.
    const int64_t kv = h["num_key_value_heads"].is_null() ? c.num_attention_heads : h["num_key_value_heads"].get<int64_t>();
    EXPECT_EQ(c.num_key_value_heads, kv);
    if (h.contains("head_dim")) {
      EXPECT_EQ(c.head_dim, h["head_dim"].get<int64_t>());
    }
  }
  const json& g = hf["granite"];
  const ModelConfig granite = load_model_config(dir + "/granite");
  // GraniteConfig's default attention_multiplier is 1.0 itself, not 1/sqrt(head_dim).
  EXPECT_DOUBLE_EQ(granite.attention_scale, g["attention_multiplier"].get<double>());
  EXPECT_DOUBLE_EQ(granite.embedding_multiplier, g["embedding_multiplier"].get<double>());
  EXPECT_DOUBLE_EQ(granite.residual_multiplier, g["residual_multiplier"].get<double>());
  EXPECT_DOUBLE_EQ(granite.logit_scale, 1.0 / g["logits_scaling"].get<double>());
  EXPECT_TRUE(hf["olmo"]["clip_qkv"].is_null());
  EXPECT_EQ(load_model_config(dir + "/olmo").clip_qkv, 0.0);
}

TEST(GraniteOlmoNemotron, RefusesValuesItCannotRunNamingTheField) {
  const json sizes = {{"vocab_size", 64}, {"hidden_size", 32}, {"intermediate_size", 64},
                      {"num_hidden_layers", 1}, {"num_attention_heads", 4}};
  auto error = [&](const char* type, const char* key, const json& value) {
    json j = sizes;
    j["model_type"] = type;
    j[key] = value;
    return test::error_of([&] { parse_model_config(j, "cfg.json"); });
  };
  EXPECT_NE(error("granite", "logits_scaling", 0).find("cfg.json: field 'logits_scaling' (0)"), std::string::npos);
  EXPECT_NE(error("granite", "attention_multiplier", -0.5).find("field 'attention_multiplier'"), std::string::npos);
  EXPECT_NE(error("granite", "residual_multiplier", "half").find("field 'residual_multiplier' must be a number"),
            std::string::npos);
  EXPECT_NE(error("olmo", "clip_qkv", -1).find("field 'clip_qkv' (-1)"), std::string::npos);
  EXPECT_NE(error("olmo", "clip_qkv", "big").find("field 'clip_qkv'"), std::string::npos);
  EXPECT_NE(error("nemotron", "hidden_act", "relu3").find("unsupported activation 'relu3'"), std::string::npos);
}

// init_weights: Nemotron's LayerNorm1P starts as the identity affine map (weight 0, so 1 + w = 1,
// and bias 0, as Megatron's zero-centred init), OLMo's norms have nothing to initialise, and a
// freshly initialised model of each gives finite logits.
TEST(GraniteOlmoNemotron, InitWeightsGivesIdentityNorms) {
  for (const char* dir : {"granite", "olmo", "nemotron"}) {
    SCOPED_TRACE(dir);
    CausalLM model(load_model_config(test::fixture(std::string("hf-zoo/") + dir)));
    model->init_weights(7);
    int64_t norm_parameters = 0;
    for (const auto& item : model->named_parameters()) {
      if (item.key().find("norm") == std::string::npos) continue;
      ++norm_parameters;
      const double expected = std::string(dir) == "granite" ? 1.0 : 0.0;  // RMSNorm weight 1; 1 + w and biases 0
      EXPECT_TRUE(torch::all(item.value() == expected).item<bool>()) << item.key();
    }
    EXPECT_EQ(norm_parameters, std::string(dir) == "olmo" ? 0 : std::string(dir) == "granite" ? 5 : 10);
    torch::NoGradGuard no_grad;
    torch::Tensor logits = model->forward(torch::arange(3, 19).view({1, 16}));
    EXPECT_TRUE(torch::isfinite(logits).all().item<bool>());
  }
  // The parameter-free norm is LayerNorm without affine, in fp32 and cast back (HF OlmoLayerNorm).
  ModelConfig c = load_model_config(test::fixture("hf-zoo/olmo"));
  Norm norm = hidden_norm(c, architecture_for(c));
  EXPECT_EQ(norm->parameters().size(), 0u);
  torch::Tensor x = torch::randn({2, 3, c.hidden_size}, torch::TensorOptions().dtype(torch::kBFloat16));
  torch::Tensor expected =
      torch::nn::functional::layer_norm(x.to(torch::kFloat),
                                        torch::nn::functional::LayerNormFuncOptions({c.hidden_size}).eps(1e-5))
          .to(torch::kBFloat16);
  EXPECT_TRUE(torch::equal(norm->forward(x), expected));
}

}  // namespace
}  // namespace forma

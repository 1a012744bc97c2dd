// Partial rotary (ModelConfig::partial_rotary_factor): read in both config spellings, refused by
// name where the architecture does not implement it, rotary_dim as HF's int(head_dim * factor),
// and the rotation by hand. The phi fixture (hf_fixture_test.cpp) checks it end to end against
// transformers.
#include <gtest/gtest.h>

#include <cmath>

#include "forma/core/error.h"
#include "forma/model/config.h"
#include "forma/model/rope.h"

namespace forma {
namespace {

std::string error_of(const nlohmann::json& j) {
  try {
    parse_model_config(j, "cfg.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

nlohmann::json phi(double factor, bool in_rope_parameters) {
  nlohmann::json j = {{"model_type", "phi"},        {"hidden_size", 64}, {"num_attention_heads", 4},
                      {"num_hidden_layers", 2},     {"vocab_size", 100}, {"intermediate_size", 128}};
  if (in_rope_parameters) {  // transformers 5
    j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 10000.0}, {"partial_rotary_factor", factor}};
  } else {  // transformers 4
    j["partial_rotary_factor"] = factor;
  }
  return j;
}

TEST(PartialRotary, ReadInBothSpellingsAndKeptOnSave) {
  for (bool v5 : {false, true}) {
    ModelConfig c = parse_model_config(phi(0.25, v5), "cfg.json");
    EXPECT_EQ(c.partial_rotary_factor, 0.25);
    EXPECT_EQ(c.rotary_dim(), 4);  // head_dim 16 * 0.25
    ModelConfig again = parse_model_config(to_hf_json(c), "again");
    EXPECT_EQ(again.partial_rotary_factor, 0.25);
  }
  // PhiConfig's default is 0.5; phi-2 says 0.4 (head_dim 80 -> 32 rotary dims)
  EXPECT_EQ(parse_model_config({{"model_type", "phi"}}, "cfg.json").partial_rotary_factor, 0.5);
  EXPECT_EQ(load_model_config("phi-2").rotary_dim(), 32);
}

TEST(PartialRotary, RefusedByNameWhereNotImplemented) {
  std::string v5 = error_of({{"model_type", "llama"},
                             {"rope_parameters", {{"rope_theta", 1e4}, {"partial_rotary_factor", 0.5}}}});
  EXPECT_NE(v5.find("cfg.json"), std::string::npos) << v5;
  EXPECT_NE(v5.find("'rope_parameters.partial_rotary_factor' (0.5)"), std::string::npos) << v5;
  EXPECT_NE(v5.find("model_type 'llama'"), std::string::npos) << v5;
  std::string v4 = error_of({{"model_type", "qwen2"}, {"partial_rotary_factor", 0.5}});
  EXPECT_NE(v4.find("field 'partial_rotary_factor' (0.5)"), std::string::npos) << v4;
  // A factor of 1 is plain RoPE, which every architecture has.
  EXPECT_EQ(error_of({{"model_type", "llama"}, {"partial_rotary_factor", 1.0}}), "");
}

TEST(PartialRotary, BadFactorsNameTheField) {
  EXPECT_NE(error_of(phi(0.0, true)).find("partial_rotary_factor"), std::string::npos);
  EXPECT_NE(error_of(phi(1.5, false)).find("partial_rotary_factor"), std::string::npos);
  // head_dim 16 * 0.125 = 2 rotary dims is fine; * 0.0625 = 1 cannot rotate in pairs.
  EXPECT_EQ(error_of(phi(0.125, true)), "");
  std::string odd = error_of(phi(0.0625, true));
  EXPECT_NE(odd.find("'partial_rotary_factor'"), std::string::npos) << odd;
  EXPECT_NE(odd.find("1 rotary dims"), std::string::npos) << odd;
}

// head_dim 4, factor 0.5: one pair (dims 0 and 1) rotates by position * theta^0 = position
// radians; dims 2 and 3 pass unchanged.
TEST(PartialRotary, RotatesTheFirstDimsOnlyByHand) {
  ModelConfig c = parse_model_config(
      {{"model_type", "phi"}, {"hidden_size", 8}, {"num_attention_heads", 2}, {"partial_rotary_factor", 0.5}},
      "cfg.json");
  torch::Tensor inv_freq = rope_inv_freq(c);
  ASSERT_EQ(inv_freq.numel(), 1);
  EXPECT_EQ(inv_freq.item<float>(), 1.0f);
  torch::Tensor x = torch::tensor({1.0f, 2.0f, 3.0f, 4.0f}).view({1, 1, 1, 4}).expand({1, 1, 3, 4}).contiguous();
  torch::Tensor y = apply_rope(x, rope_tables(inv_freq, 0, 3));
  for (int p = 0; p < 3; ++p) {
    const double cs = std::cos(p), sn = std::sin(p);
    // rotate_half over the 2 rotary dims: [x0, x1] -> [x0 cos - x1 sin, x1 cos + x0 sin]
    EXPECT_NEAR(y[0][0][p][0].item<float>(), 1 * cs - 2 * sn, 1e-6) << p;
    EXPECT_NEAR(y[0][0][p][1].item<float>(), 2 * cs + 1 * sn, 1e-6) << p;
    EXPECT_EQ(y[0][0][p][2].item<float>(), 3.0f) << p;
    EXPECT_EQ(y[0][0][p][3].item<float>(), 4.0f) << p;
  }
}

}  // namespace
}  // namespace forma

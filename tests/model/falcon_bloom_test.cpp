// Falcon and BLOOM beyond the hf-zoo fixture suite: the layouts the fixtures do not use (Falcon's
// sequential block with biases, its per-head query_key_value, the new decoder with one norm; BLOOM
// with a head count that is not a power of two) against transformers itself
// (falcon_bloom_reference.py writes the models, their logits and HF's ALiBi slopes), ALiBi with
// left-padded rows and a KV cache against each row alone, config round trips in both of Falcon's
// spellings, and the refusals.
#include <gtest/gtest.h>

#include <fstream>

#include "forma/core/error.h"
#include "forma/model/attention.h"
#include "forma/model/causal_lm.h"
#include "forma/model/config.h"
#include "forma/model/hf_io.h"
#include "forma/model/kv_cache.h"
#include "forma/model/tensor_io.h"
#include "forma/peft/lora_model.h"
#include "python_oracle.h"
#include "test_paths.h"

namespace forma {
namespace {

const std::string& falcon_bloom_dir() { return test::python_oracle_output("falcon_bloom_reference.py"); }

void expect_matches_transformers(const std::string& name) {
  const std::string dir = falcon_bloom_dir() + "/" + name;
  EXPECT_LT(test::logits_diff(dir, AttentionKernel::Fused), 1e-4);
  EXPECT_LT(test::logits_diff(dir, AttentionKernel::Explicit), 1e-4);
}

TEST(FalconBloom, FalconSequentialBlockWithBiasesMatchesTransformers) {
  ModelConfig c = load_model_config(falcon_bloom_dir() + "/falcon_sequential");
  EXPECT_FALSE(c.parallel_block);
  EXPECT_TRUE(c.attention_bias);
  EXPECT_EQ(c.num_key_value_heads, 1);
  expect_matches_transformers("falcon_sequential");
}

TEST(FalconBloom, FalconPerHeadQueryKeyValueMatchesTransformers) {
  ModelConfig c = load_model_config(falcon_bloom_dir() + "/falcon_per_head");
  EXPECT_EQ(c.num_key_value_heads, 4);
  EXPECT_TRUE(c.parallel_block);
  expect_matches_transformers("falcon_per_head");
}

TEST(FalconBloom, FalconNewDecoderWithOneNormMatchesTransformers) {
  ModelConfig c = load_model_config(falcon_bloom_dir() + "/falcon_40b_one_norm");
  EXPECT_EQ(c.num_key_value_heads, 2);
  EXPECT_TRUE(c.parallel_block);
  EXPECT_FALSE(c.parallel_mlp_norm);
  expect_matches_transformers("falcon_40b_one_norm");
}

TEST(FalconBloom, BloomWithSixHeadsMatchesTransformers) {
  ModelConfig c = load_model_config(falcon_bloom_dir() + "/bloom_6_heads");
  EXPECT_TRUE(c.alibi);
  EXPECT_EQ(c.num_attention_heads, 6);
  expect_matches_transformers("bloom_6_heads");
}

TEST(FalconBloom, AlibiSlopesAreTransformersBitForBit) {
  auto ref = load_tensors(falcon_bloom_dir() + "/alibi_slopes.safetensors");
  for (int64_t n = 1; n <= 40; ++n) {
    SCOPED_TRACE("heads " + std::to_string(n));
    EXPECT_TRUE(torch::equal(alibi_slopes(n), ref.at("slopes." + std::to_string(n))));
  }
}

// Row 1 is left-padded by 3: its prefill and two decode steps give the logits it gives alone, with
// the fused kernel (ALiBi as a float mask) and the explicit one, as does the unpadded row 0.
TEST(FalconBloom, AlibiLeftPaddedRowsWithACacheComputeAsAlone) {
  for (AttentionKernel kernel : {AttentionKernel::Fused, AttentionKernel::Explicit}) {
    SCOPED_TRACE(kernel == AttentionKernel::Fused ? "fused" : "explicit");
    torch::NoGradGuard no_grad;
    CausalLM model = load_pretrained(test::fixture("hf-zoo/bloom"));
    model->eval();
    model->set_attention_kernel(kernel);
    torch::manual_seed(5);
    torch::Tensor ids = torch::randint(3, 256, {2, 9}, torch::kInt64);
    ids.index_put_({1, torch::indexing::Slice(0, 3)}, 0);
    KVCache cache(model->config(), 16);
    cache.set_left_padding(torch::tensor({0, 3}, torch::kInt64));
    torch::Tensor batch = model->forward(ids, &cache);
    std::vector<torch::Tensor> steps = {batch.narrow(1, 8, 1)};
    torch::Tensor next = torch::randint(3, 256, {2, 2}, torch::kInt64);
    for (int64_t s = 0; s < 2; ++s) steps.push_back(model->forward(next.narrow(1, s, 1), &cache));
    for (int64_t row = 0; row < 2; ++row) {
      SCOPED_TRACE("row " + std::to_string(row));
      const int64_t pad = row == 0 ? 0 : 3;
      KVCache alone_cache(model->config(), 16);
      torch::Tensor alone = model->forward(ids.narrow(0, row, 1).narrow(1, pad, 9 - pad), &alone_cache);
      EXPECT_LT((alone[0] - batch[row].narrow(0, pad, 9 - pad)).abs().max().item<double>(), 1e-5);
      for (int64_t s = 0; s < 2; ++s) {
        torch::Tensor step = model->forward(next.narrow(0, row, 1).narrow(1, s, 1), &alone_cache);
        EXPECT_LT((step[0] - steps[s + 1][row]).abs().max().item<double>(), 1e-5);
      }
    }
  }
}

// In bfloat16 the ALiBi bias reaches both kernels in the model's dtype (the fused kernel takes a
// float mask of q's dtype only): the logits of the prompt and of cached decode steps stay near
// transformers' fp32 ones (measured: 1.0% of their range fused, 1.25% explicit; bound 3%).
TEST(FalconBloom, AlibiInBfloat16StaysNearTheFloat32Reference) {
  const std::string dir = test::fixture("hf-zoo/bloom");
  auto ref = load_tensors(dir + "/reference.safetensors");
  const torch::Tensor expected = ref.at("logits").to(torch::kDouble);
  const double range = expected.abs().max().item<double>();
  for (AttentionKernel kernel : {AttentionKernel::Fused, AttentionKernel::Explicit}) {
    SCOPED_TRACE(kernel == AttentionKernel::Fused ? "fused" : "explicit");
    CausalLM model = load_pretrained(dir, LoadOptions{torch::kBFloat16});
    model->eval();
    model->set_attention_kernel(kernel);
    torch::NoGradGuard no_grad;
    const torch::Tensor ids = ref.at("input_ids");
    const double diff = (model->forward(ids).to(torch::kDouble) - expected).abs().max().item<double>();
    EXPECT_LT(diff, 0.03 * range);
    // The same positions through a cache: a prompt of 12, then 4 steps of one token.
    KVCache cache(model->config(), 16);
    torch::Tensor prompt = model->forward(ids.narrow(1, 0, 12), &cache);
    std::vector<torch::Tensor> steps = {prompt};
    for (int64_t t = 12; t < 16; ++t) steps.push_back(model->forward(ids.narrow(1, t, 1), &cache));
    const double cached = (torch::cat(steps, 1).to(torch::kDouble) - expected).abs().max().item<double>();
    EXPECT_LT(cached, 0.03 * range);
  }
}

// Every key of the fixture's config.json comes back with its value (RoPE in transformers 4's
// spelling: rope_parameters becomes rope_theta).
TEST(FalconBloom, ConfigsRoundTripWithTransformersFieldNames) {
  for (const char* dir : {"hf-zoo/falcon_7b", "hf-zoo/falcon_40b", "hf-zoo/bloom"}) {
    SCOPED_TRACE(dir);
    std::ifstream in(test::fixture(dir) + "/config.json");
    const nlohmann::json original = nlohmann::json::parse(in);
    const nlohmann::json written = to_hf_json(load_model_config(test::fixture(dir)));
    for (const auto& [key, value] : original.items()) {
      if (key == "rope_parameters") {
        EXPECT_EQ(written.at("rope_theta"), value.at("rope_theta"));
        continue;
      }
      ASSERT_TRUE(written.contains(key)) << key;
      EXPECT_EQ(written.at(key), value) << key;
    }
  }
}

// RefinedWeb's names (n_embed, n_layer, n_head, n_head_kv) are read and written back as spelled.
TEST(FalconBloom, FalconOldFieldNamesReadAndWrittenAsSpelled) {
  const nlohmann::json old = {{"model_type", "falcon"}, {"n_embed", 64},          {"n_layer", 3},
                              {"n_head", 8},            {"n_head_kv", 2},         {"new_decoder_architecture", true},
                              {"vocab_size", 100},      {"parallel_attn", true}, {"bias", false}};
  ModelConfig c = parse_model_config(old, "old.json");
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.num_hidden_layers, 3);
  EXPECT_EQ(c.num_attention_heads, 8);
  EXPECT_EQ(c.num_key_value_heads, 2);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.intermediate_size, 256);  // ffn_hidden_size's default: 4 x hidden
  EXPECT_TRUE(c.parallel_mlp_norm);     // num_ln_in_parallel_attn's default with the new decoder: 2
  const nlohmann::json written = to_hf_json(c);
  for (const char* key : {"n_embed", "n_layer", "n_head", "n_head_kv"}) EXPECT_EQ(written.at(key), old.at(key)) << key;
  for (const char* key : {"hidden_size", "num_hidden_layers", "num_attention_heads", "num_kv_heads"}) {
    EXPECT_FALSE(written.contains(key)) << key;
  }
  EXPECT_EQ(to_hf_json(parse_model_config(written, "again")), written);
  // The new names win over the old ones, as in transformers.
  nlohmann::json both = old;
  both["num_attention_heads"] = 4;
  EXPECT_EQ(parse_model_config(both, "both.json").num_attention_heads, 4);
}

TEST(FalconBloom, RefusesWhatItCannotRunNamingTheField) {
  auto error = [](nlohmann::json j) { return test::error_of([&] { parse_model_config(j, "cfg.json"); }); };
  const nlohmann::json falcon = {{"model_type", "falcon"}, {"hidden_size", 32}, {"num_attention_heads", 4},
                                 {"vocab_size", 64}};
  auto with = [&](const char* key, const nlohmann::json& value) {
    nlohmann::json j = falcon;
    j[key] = value;
    return j;
  };
  std::string e = error(with("alibi", true));
  EXPECT_NE(e.find("cfg.json: field 'alibi': true is not supported for model_type 'falcon'"), std::string::npos) << e;
  nlohmann::json j = with("new_decoder_architecture", true);
  j["parallel_attn"] = false;
  e = error(j);
  EXPECT_NE(e.find("cfg.json: field 'parallel_attn': false with new_decoder_architecture"), std::string::npos) << e;
  e = error(with("num_ln_in_parallel_attn", 2));
  EXPECT_NE(e.find("cfg.json: field 'num_ln_in_parallel_attn' (2)"), std::string::npos) << e;
  j = with("multi_query", false);
  j["num_kv_heads"] = 2;
  e = error(j);
  EXPECT_NE(e.find("cfg.json: field 'num_kv_heads' (2): without multi_query"), std::string::npos) << e;
  j = with("new_decoder_architecture", true);
  j["num_kv_heads"] = 3;
  e = error(j);
  EXPECT_NE(e.find("cfg.json: field 'num_kv_heads' (3) must divide"), std::string::npos) << e;
  e = error({{"model_type", "bloom"}, {"apply_residual_connection_post_layernorm", true}});
  EXPECT_NE(e.find("cfg.json: field 'apply_residual_connection_post_layernorm'"), std::string::npos) << e;
  e = error({{"model_type", "bloom"}, {"hidden_size", 30}, {"n_head", 4}});
  EXPECT_NE(e.find("cfg.json: field 'n_head' (4) must divide hidden_size (30)"), std::string::npos) << e;
}

// Falcon-7B's query_key_value holds q, k and v of unequal sizes ([q heads | k | v]): LoRA on it is
// three adapters that save as one PEFT module (block-diagonal B) and load back to the same model.
TEST(FalconBloom, LoraOnFalconMultiQueryQueryKeyValueSavesAndLoadsBack) {
  const std::string fixture = test::fixture("hf-zoo/falcon_7b");
  CausalLM model = load_pretrained(fixture);
  peft::LoraConfig config;
  config.target_modules = {"query_key_value"};
  config.r = 2;
  ASSERT_EQ(peft::apply_lora(model, config, "recipe.yaml lora"), 6);  // q, k, v of 2 layers
  torch::manual_seed(7);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->named_parameters()) {
      if (p.key().find("lora_B") != std::string::npos) p.value().normal_(0.0, 0.5);  // B starts at 0
    }
  }
  const torch::Tensor ids = torch::randint(3, 256, {1, 12}, torch::kInt64);
  torch::NoGradGuard no_grad;
  model->eval();
  const torch::Tensor adapted = model->forward(ids);
  const std::string dir = test::scratch_dir() + "/adapter";
  peft::save_adapter(model, config, dir);
  CausalLM reloaded = load_pretrained(fixture);
  const torch::Tensor base = reloaded->forward(ids);
  peft::load_adapter(reloaded, dir);
  reloaded->eval();
  EXPECT_GT((base - adapted).abs().max().item<double>(), 1e-2) << "the adapter should change the logits";
  EXPECT_LT((reloaded->forward(ids) - adapted).abs().max().item<double>(), 1e-5);
}

// PEFT's own adapter on falcon-7b's query_key_value (one lora_B over the q, k and v rows) gives
// PEFT's logits in forma (tests/peft/peft_reference.py, init_lora_weights=False).
TEST(FalconBloom, PeftAdapterOnFalconQueryKeyValueGivesPeftsLogits) {
  const std::string fixture = test::fixture("hf-zoo/falcon_7b");
  const std::string adapter = test::scratch_dir() + "/peft";
  const char* ids = "1,5,9,33,7,200,41,12,3,88,150,2";
  auto r = test::run_command("'" + test::python() + "' '" + test::fixture("../peft/peft_reference.py") +
                             "' make-adapter '" + fixture + "' '" + adapter + "' query_key_value --ids " + ids);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  CausalLM model = load_pretrained(fixture);
  model->eval();
  const torch::Tensor input = torch::tensor({1, 5, 9, 33, 7, 200, 41, 12, 3, 88, 150, 2}, torch::kInt64).unsqueeze(0);
  torch::NoGradGuard no_grad;
  const torch::Tensor base = model->forward(input)[0];
  peft::load_adapter(model, adapter);
  const torch::Tensor expected = load_tensors(adapter + "/reference_logits.safetensors").at("logits");
  EXPECT_GT((base - expected).abs().max().item<double>(), 1e-2) << "the adapter should change the logits";
  EXPECT_LT((model->forward(input)[0] - expected).abs().max().item<double>(), 1e-4);
}

}  // namespace
}  // namespace forma

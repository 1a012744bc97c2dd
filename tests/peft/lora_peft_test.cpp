// LoRA adapters against Hugging Face PEFT itself (tests/peft/peft_reference.py): adapters PEFT
// makes load in forma with PEFT's logits, adapters forma trains load in PEFT with forma's logits,
// and `forma lora merge` writes a folder that transformers loads with the same logits.
#include <gtest/gtest.h>

#include <filesystem>

#include "../train/train_fixture.h"
#include "forma/model/hf_io.h"
#include "forma/model/tensor_io.h"
#include "forma/peft/lora_model.h"
#include "forma/train/trainer.h"
#include "test_paths.h"

namespace forma::peft::lora_peft_test {

namespace fs = std::filesystem;

const char* kIds = "1,5,9,33,7,200,41,12,3,88,150,2";

void python(const std::string& args) {
  auto r = test::run_command("'" + test::python() + "' '" + test::fixture("../peft/peft_reference.py") + "' " + args);
  ASSERT_EQ(r.exit_code, 0) << args << "\n" << r.output;
}

// transformers' logits [T, V] of kIds for each (model folder, PEFT adapter folder or "-"), from one
// Python process.
std::vector<torch::Tensor> reference_logits(const std::vector<std::pair<std::string, std::string>>& runs) {
  const std::string out = test::scratch_dir() + "/reference_logits.safetensors";
  std::string args = "logits '" + out + "' " + kIds;
  for (const auto& [model, adapter] : runs) args += " '" + model + "' '" + adapter + "'";
  python(args);
  auto tensors = load_tensors(out);
  std::vector<torch::Tensor> logits;
  for (size_t i = 0; i < runs.size(); ++i) logits.push_back(tensors.at("logits" + std::to_string(i)));
  return logits;
}

torch::Tensor forma_logits(CausalLM& model) {
  torch::NoGradGuard no_grad;
  model->eval();
  std::vector<int64_t> ids;
  for (auto& part : {1, 5, 9, 33, 7, 200, 41, 12, 3, 88, 150, 2}) ids.push_back(part);
  return model->forward(torch::tensor(ids).unsqueeze(0)).select(0, 0);
}

double max_diff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

// "llama": tests/fixtures/hf-tiny/llama; a name with a folder ("hf-zoo/phi3") as it is.
std::string fixture_name(const std::string& model) {
  return model.find('/') == std::string::npos ? "hf-tiny/" + model : model;
}

// A test name's part for a model: the fixture's folder name.
std::string test_name(const std::string& model) { return model.substr(model.rfind('/') + 1); }

struct PeftCase {
  const char* model;
  const char* targets;
  const char* extra;  // more make-adapter options
};

class PeftAdapterInForma : public testing::TestWithParam<PeftCase> {};

// PEFT's adapter with random A and non-zero B (init_lora_weights=False) on forma's model gives
// PEFT's logits.
TEST_P(PeftAdapterInForma, SameLogitsAsPeft) {
  const auto& c = GetParam();
  const std::string model_dir = test::fixture(fixture_name(c.model));
  const std::string adapter = test::scratch_dir() + "/adapter";
  python(std::string("make-adapter '") + model_dir + "' '" + adapter + "' '" + c.targets + "' --ids " + kIds + " " +
         c.extra);
  CausalLM model = load_pretrained(model_dir);
  const torch::Tensor base = forma_logits(model);
  load_adapter(model, adapter);
  const torch::Tensor adapted = forma_logits(model);
  const torch::Tensor expected = load_tensors(adapter + "/reference_logits.safetensors").at("logits");
  EXPECT_GT(max_diff(base, expected), 1e-2) << "the adapter should change the logits";
  EXPECT_LT(max_diff(adapted, expected), 1e-4);
  // Merged into the weights: the same function to rounding.
  merge_lora(model);
  EXPECT_LT(max_diff(forma_logits(model), adapted), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(
    LoraPeft, PeftAdapterInForma,
    testing::Values(PeftCase{"llama", "q_proj,v_proj,down_proj", "--modules-to-save lm_head"},
                    PeftCase{"qwen2", "all-linear", "--r 8 --alpha 16 --rslora 1"},
                    PeftCase{"gpt2", "c_attn,c_proj,c_fc", ""}, PeftCase{"mistral", "k_proj,o_proj,gate_proj", "--r 3 --alpha 5"},
                    PeftCase{"llama", "model\\.layers\\.1\\..*_proj", "--r 2"},
                    // Fused HF modules split into parts of unequal size (q wider than k and v under
                    // GQA) and into two (gate | up).
                    PeftCase{"hf-zoo/phi3", "qkv_proj,gate_up_proj,o_proj", "--r 3"},
                    PeftCase{"hf-zoo/glm", "gate_up_proj,q_proj", ""},
                    // Fused q/k/v whose rows interleave per head (gpt_neox, bloom) or per kv group
                    // (falcon-40b's new decoder): one PEFT lora_B split as the weight is.
                    PeftCase{"hf-zoo/gpt_neox", "query_key_value,dense", "--r 3"},
                    PeftCase{"hf-zoo/bloom", "all-linear", ""},
                    PeftCase{"hf-zoo/falcon_40b", "query_key_value,dense_4h_to_h", "--r 2"},
                    // Multi-head latent attention's linears, q through its LoRA latent (deepseek_v3).
                    PeftCase{"hf-zoo/deepseek_v3", "q_a_proj,q_b_proj,kv_a_proj_with_mqa,kv_b_proj,o_proj", "--r 2"}),
    [](const testing::TestParamInfo<PeftCase>& info) { return test_name(info.param.model) + std::to_string(info.index); });

struct TrainCase {
  const char* model;
  std::vector<std::string> overrides;
};

class FormaAdapterInPeft : public testing::TestWithParam<TrainCase> {};

// An adapter trained by forma (a few steps, saved in the checkpoint) loads in PEFT with forma's
// logits; `forma lora merge` gives a folder transformers loads with the same logits, and equal to
// the unmerged model's.
TEST_P(FormaAdapterInPeft, SameLogitsInPeftAndMerged) {
  const auto& c = GetParam();
  const std::string model_dir = test::fixture(fixture_name(c.model));
  const std::string dir = test::scratch_dir();
  // The zoo's fixtures have 256 ids, hf-tiny's 320 or more.
  const int vocab = static_cast<int>(load_model_config(model_dir).vocab_size);
  auto overrides = test::tiny_overrides(test::write_pattern_dataset(dir, 40, 200, std::min(vocab, 320)), dir + "/out");
  overrides[0] = "model.path=" + model_dir;
  for (const auto& o : {"training.max_steps=4", "optimizer.lr=0.01", "logging.eval_interval=0",
                        "checkpoint.interval=0", "training.seq_len=16"}) {
    overrides.push_back(o);
  }
  overrides.insert(overrides.end(), c.overrides.begin(), c.overrides.end());
  train::Trainer trainer(train::load_recipe(test::tiny_recipe_path(), overrides));
  ASSERT_EQ(trainer.run(), train::RunEnd::finished);
  const torch::Tensor trained = forma_logits(trainer.model());
  const std::string ckpt = dir + "/out/checkpoints/step-0000004";
  ASSERT_TRUE(fs::exists(ckpt + "/adapter_config.json"));
  ASSERT_TRUE(fs::exists(ckpt + "/adapter_model.safetensors"));

  // forma reads back what it wrote (gpt2: the three q/k/v adapters come back as parts of one
  // rank-3r c_attn adapter, zeros added in another order: equal to rounding).
  CausalLM reloaded = load_pretrained(model_dir);
  load_adapter(reloaded, ckpt);
  EXPECT_LT(max_diff(forma_logits(reloaded), trained), 1e-5);

  const std::string merged = dir + "/merged";
  auto r = test::run_forma("lora merge --model '" + model_dir + "' --adapter '" + ckpt + "' --to '" + merged + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  CausalLM merged_model = load_pretrained(merged);
  EXPECT_LT(max_diff(forma_logits(merged_model), trained), 1e-5);

  // The command line's --adapter gives the same model.
  const std::string logits_file = dir + "/adapter_logits.safetensors";
  r = test::run_forma("logits --model '" + model_dir + "' --adapter '" + ckpt + "' --prompt-ids " + kIds + " --out '" +
                      logits_file + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_LT(max_diff(load_tensors(logits_file).at("logits"), trained), 1e-5);

  auto reference = reference_logits({{model_dir, "-"}, {model_dir, ckpt}, {merged, "-"}});
  EXPECT_GT(max_diff(reference[0], reference[1]), 1e-3) << "training should have moved the adapter";
  EXPECT_LT(max_diff(trained, reference[1]), 1e-4) << "PEFT on the base";
  EXPECT_LT(max_diff(trained, reference[2]), 1e-4) << "transformers on the merged folder";
}

INSTANTIATE_TEST_SUITE_P(
    LoraPeft, FormaAdapterInPeft,
    testing::Values(TrainCase{"llama", {"lora.r=4", "lora.alpha=8", "lora.target_modules=[q_proj, v_proj, up_proj]",
                                        "lora.modules_to_save=[lm_head]", "lora.dropout=0.1"}},
                    TrainCase{"qwen2", {"lora.r=4", "lora.target_modules=all-linear", "lora.use_rslora=true"}},
                    TrainCase{"gpt2", {"lora.r=2", "lora.alpha=4", "lora.target_modules=[c_attn, c_proj, c_fc]"}},
                    TrainCase{"hf-zoo/phi3", {"lora.r=2", "lora.target_modules=[qkv_proj, gate_up_proj]"}},
                    TrainCase{"hf-zoo/gpt_neox", {"lora.r=2", "lora.target_modules=all-linear"}}),
    [](const testing::TestParamInfo<TrainCase>& info) { return test_name(info.param.model); });

}  // namespace forma::peft::lora_peft_test

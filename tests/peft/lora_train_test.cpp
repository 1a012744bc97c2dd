// LoRA training in forma: only the adapters train (the base stays bit for bit), checkpoints hold
// the adapters' AdamW state alone, resume reproduces the uninterrupted run exactly, and bad
// settings are refused with the key or file named.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "../train/train_fixture.h"
#include "forma/core/error.h"
#include "forma/model/hf_io.h"
#include "forma/peft/lora_model.h"
#include "forma/peft/lora_plan.h"
#include "forma/train/checkpoint_slices.h"
#include "forma/train/dist_checkpoint_reader.h"
#include "forma/train/trainer.h"
#include "../model/zoo_fixtures.h"
#include "test_paths.h"

namespace forma::peft::lora_train_test {

namespace fs = std::filesystem;

std::vector<std::string> lora_overrides(const std::string& dir, std::vector<std::string> extra = {}) {
  auto o = test::tiny_overrides(test::write_pattern_dataset(dir), dir + "/out");
  o[0] = "model.path=" + test::fixture("hf-tiny/llama");  // HF weights: the base to keep frozen
  for (const auto& s : {"training.max_steps=6", "logging.eval_interval=0", "checkpoint.interval=0",
                        "training.seq_len=16", "optimizer.lr=0.01", "lora.r=4", "lora.alpha=8", "lora.dropout=0.2",
                        "lora.target_modules=[q_proj, v_proj, down_proj]"}) {
    o.push_back(s);
  }
  o.insert(o.end(), extra.begin(), extra.end());
  return o;
}

TEST(LoraTraining, OnlyAdaptersTrainAndCheckpointHoldsTheirStateOnly) {
  const auto dir = test::scratch_dir();
  train::Trainer trainer(train::load_recipe(test::tiny_recipe_path(), lora_overrides(dir)));
  ASSERT_EQ(trainer.run(), train::RunEnd::finished);
  CausalLM base = load_pretrained(test::fixture("hf-tiny/llama"));
  auto base_params = base->named_parameters();
  int adapters = 0;
  for (const auto& p : trainer.model()->named_parameters()) {
    if (is_lora_parameter(p.key())) {
      ++adapters;
      if (p.key().find("lora_B") != std::string::npos) {
        EXPECT_GT(p.value().abs().max().item<double>(), 0) << p.key() << " did not train";
      }
      continue;
    }
    ASSERT_TRUE(base_params.contains(p.key())) << p.key();
    EXPECT_TRUE(torch::equal(p.value(), base_params[p.key()])) << p.key() << " changed";
  }
  EXPECT_EQ(adapters, 2 * 3 * 2);  // A and B, 3 targets, 2 layers

  const std::string ckpt = dir + "/out/checkpoints/step-0000006";
  train::DistCheckpointReader reader(ckpt, /*verify=*/true);
  int optimizer_tensors = 0;
  for (const auto& [name, entry] : reader.metadata().tensors) {
    if (name.rfind(train::kOptimizerPrefix, 0) != 0) continue;
    ++optimizer_tensors;
    EXPECT_NE(name.find(".lora_"), std::string::npos) << name << ": optimizer state of a frozen parameter";
  }
  EXPECT_EQ(optimizer_tensors, adapters * 3);  // exp_avg, exp_avg_sq, step
  // The checkpoint's model.safetensors is the base model (the adapter is in adapter_model.safetensors).
  CausalLM from_ckpt = load_pretrained(ckpt);
  for (const auto& p : from_ckpt->named_parameters()) EXPECT_TRUE(torch::equal(p.value(), base_params[p.key()]));
  // `forma ckpt merge` would write that base alone: it points at `forma lora merge` instead.
  auto merge = test::run_forma("ckpt merge '" + ckpt + "' --to '" + dir + "/merged'");
  EXPECT_EQ(merge.exit_code, 1) << merge.output;
  EXPECT_NE(merge.output.find("a LoRA checkpoint"), std::string::npos) << merge.output;
  EXPECT_NE(merge.output.find("forma lora merge --model " + ckpt), std::string::npos) << merge.output;
}

// lora.base_dtype bf16: the frozen base is the fixture rounded to bf16, bit for bit after training,
// the adapters and their optimizer state fp32; the adapter then works on the fp32 base too.
TEST(LoraTraining, Bf16BaseStaysFrozenAdaptersTrainInFp32) {
  const auto dir = test::scratch_dir();
  train::Trainer trainer(train::load_recipe(test::tiny_recipe_path(), lora_overrides(dir, {"lora.base_dtype=bf16"})));
  ASSERT_EQ(trainer.run(), train::RunEnd::finished);
  CausalLM base = load_pretrained(test::fixture("hf-tiny/llama"));
  auto base_params = base->named_parameters();
  for (const auto& p : trainer.model()->named_parameters()) {
    if (is_lora_parameter(p.key())) {
      EXPECT_EQ(p.value().scalar_type(), torch::kFloat) << p.key();
      continue;
    }
    EXPECT_EQ(p.value().scalar_type(), torch::kBFloat16) << p.key();
    EXPECT_TRUE(torch::equal(p.value(), base_params[p.key()].to(torch::kBFloat16))) << p.key() << " changed";
  }
  EXPECT_TRUE(std::isfinite(trainer.state().last_loss));
  // The same adapter on the fp32 base: the same function to bf16's precision.
  load_adapter(base, dir + "/out/checkpoints/step-0000006");
  torch::NoGradGuard no_grad;
  trainer.model()->eval(), base->eval();
  auto ids = torch::tensor({1, 5, 9, 33, 7, 200, 41, 12}, torch::kLong).unsqueeze(0);
  auto want = base->forward(ids), got = trainer.model()->forward(ids);
  EXPECT_LT((got - want).abs().max().item<double>(), 0.05 * want.abs().max().item<double>());
}

// Recomputing the layers in backward gives the adapters the same gradients (the frozen base's
// parameters are not inputs of the recomputation).
TEST(LoraTraining, ActivationCheckpointingGivesTheSameSteps) {
  const auto dir = test::scratch_dir();
  train::TrainerOptions quiet;
  quiet.write_outputs = false;
  train::Trainer plain(train::load_recipe(test::tiny_recipe_path(), lora_overrides(dir, {"lora.dropout=0"})), quiet);
  train::Trainer recompute(train::load_recipe(test::tiny_recipe_path(),
                                              lora_overrides(dir, {"lora.dropout=0", "training.activation_checkpointing=true"})),
                           quiet);
  for (int i = 0; i < 3; ++i) {
    auto a = plain.step(), b = recompute.step();
    EXPECT_NEAR(a.loss, b.loss, 1e-6) << "step " << i + 1;
    EXPECT_NEAR(a.grad_norm, b.grad_norm, 1e-5 * a.grad_norm) << "step " << i + 1;
  }
  auto e = test::error_of([&] {
    train::Trainer t(train::load_recipe(test::tiny_recipe_path(), lora_overrides(dir, {"training.activation_checkpointing=true"})));
  });
  EXPECT_NE(e.find("lora.dropout > 0 with training.activation_checkpointing"), std::string::npos) << e;
}

// MFU's FLOPs: a frozen parameter costs 4 per token (no weight gradient), a trained one 6 (the 6N
// rule); the adapters are products of their own. Counted here from the built models.
TEST(LoraTraining, FlopsPerTokenCountNoWeightGradientsForTheFrozenBase) {
  const auto dir = test::scratch_dir();
  train::TrainerOptions quiet;
  quiet.write_outputs = false;
  auto full_overrides = test::tiny_overrides(test::write_pattern_dataset(dir), dir + "/out");
  full_overrides[0] = "model.path=" + test::fixture("hf-tiny/llama");
  full_overrides.push_back("training.seq_len=16");
  train::Trainer full(train::load_recipe(test::tiny_recipe_path(), full_overrides), quiet);
  double products = 0;  // the N of 6N: every parameter but the lookup table (not tied in this fixture)
  for (const auto& p : full.model()->named_parameters()) {
    if (p.key().find("embed_tokens") == std::string::npos) products += p.value().numel();
  }
  for (const bool save_lm_head : {false, true}) {
    std::vector<std::string> extra = {"lora.dropout=0"};
    if (save_lm_head) extra.push_back("lora.modules_to_save=[lm_head]");
    train::Trainer lora(train::load_recipe(test::tiny_recipe_path(), lora_overrides(dir, extra)), quiet);
    double adapters = 0, lm_head = 0;
    for (const auto& p : lora.model()->named_parameters()) {
      if (is_lora_parameter(p.key())) adapters += p.value().numel();
      if (p.key() == "lm_head.weight") lm_head = p.value().numel();
    }
    const double frozen = products - (save_lm_head ? lm_head : 0);
    EXPECT_DOUBLE_EQ(lora.flops_per_token(), full.flops_per_token() - 2 * frozen + 6 * adapters)
        << "modules_to_save lm_head: " << save_lm_head;
  }
}

TEST(LoraTraining, ResumeIsExact) {
  const auto dir = test::scratch_dir();
  const auto whole_dir = dir + "/whole", split_dir = dir + "/split";
  fs::create_directories(whole_dir), fs::create_directories(split_dir);
  train::Trainer whole(train::load_recipe(test::tiny_recipe_path(), lora_overrides(whole_dir)));
  ASSERT_EQ(whole.run(), train::RunEnd::finished);
  {
    train::TrainerOptions stop;
    stop.stop_after_step = 3;
    train::Trainer first(train::load_recipe(test::tiny_recipe_path(), lora_overrides(split_dir)), stop);
    ASSERT_EQ(first.run(), train::RunEnd::stopped);
  }
  train::Trainer second(train::load_recipe(test::tiny_recipe_path(), lora_overrides(split_dir)));
  second.resume("");
  EXPECT_EQ(second.state().step, 3);
  ASSERT_EQ(second.run(), train::RunEnd::finished);
  auto a = test::logged_losses(whole_dir + "/out/metrics.jsonl");
  auto b = test::logged_losses(split_dir + "/out/metrics.jsonl");
  ASSERT_EQ(a.size(), 6u);
  EXPECT_EQ(a, b);  // the loss text of every step, bit for bit (dropout's generator restored too)
  auto pb = second.model()->named_parameters();
  for (const auto& p : whole.model()->named_parameters()) {
    EXPECT_TRUE(torch::equal(p.value(), pb[p.key()])) << p.key();
  }
}

TEST(LoraTraining, BadSettingsAreRefusedWithTheirName) {
  const auto dir = test::scratch_dir();
  auto error = [&](std::vector<std::string> extra) {
    return test::error_of([&] { train::Trainer t(train::load_recipe(test::tiny_recipe_path(), lora_overrides(dir, extra))); });
  };
  EXPECT_NE(error({"lora.r=0"}).find("lora.r"), std::string::npos) << error({"lora.r=0"});
  EXPECT_NE(error({"lora.init=kaiming"}).find("lora.init"), std::string::npos);
  EXPECT_NE(error({"lora.rank=4"}).find("unknown key 'lora.rank'"), std::string::npos);
  auto bf16_saved = error({"lora.base_dtype=bf16", "lora.modules_to_save=[lm_head]"});
  EXPECT_NE(bf16_saved.find("lora.base_dtype: bf16 cannot be combined with modules_to_save"), std::string::npos)
      << bf16_saved;
  auto unmatched = error({"lora.target_modules=[qkv_proj]"});
  EXPECT_NE(unmatched.find("matched no linear layer"), std::string::npos) << unmatched;
  EXPECT_NE(unmatched.find("q_proj"), std::string::npos) << unmatched;  // the layers there are
  auto embedding = error({"lora.target_modules=[embed_tokens]"});
  EXPECT_NE(embedding.find("not a linear layer"), std::string::npos) << embedding;
}

TEST(LoraTraining, AdapterConfigFeaturesForLacksAreRefused) {
  const auto dir = test::scratch_dir();
  CausalLM model = load_pretrained(test::fixture("hf-tiny/llama"));
  std::ofstream(dir + "/adapter_config.json")
      << R"({"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj"], "use_dora": true})";
  auto e = test::error_of([&] { load_adapter(model, dir); });
  EXPECT_NE(e.find("adapter_config.json: field 'use_dora'"), std::string::npos) << e;
  std::ofstream(dir + "/adapter_config.json") << R"({"peft_type": "IA3", "target_modules": ["q_proj"]})";
  e = test::error_of([&] { load_adapter(model, dir); });
  EXPECT_NE(e.find("peft_type"), std::string::npos) << e;
}

// The plan from the config alone (forma model info --lora-r) counts what apply_lora builds.
TEST(LoraTraining, PlanFromConfigCountsWhatApplyBuilds) {
  struct Case {
    const char* model;
    std::vector<std::string> targets;
    bool all_linear;
  };
  for (const auto& c : {Case{"llama", {}, true}, Case{"gpt2", {"c_attn", "c_proj"}, false},
                        Case{"mixtral", {}, true}, Case{"qwen2", {"q_proj", "down_proj"}, false}}) {
    const std::string dir = test::fixture(std::string("hf-tiny/") + c.model);
    CausalLM model = load_pretrained(dir);
    LoraConfig lora;
    lora.r = 3, lora.target_modules = c.targets, lora.all_linear = c.all_linear;
    const int64_t layers = apply_lora(model, lora, "test");
    const auto plan = plan_lora(model->config(), lora, "test");
    EXPECT_EQ(plan.layers, layers) << c.model;
    EXPECT_EQ(plan.adapter_params, parameter_counts(model).trainable) << c.model;
  }
  auto r = test::run_forma("model info llama-2-7b --lora-r 8 --lora-targets q_proj,v_proj");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // 32 layers x 2 targets x 8 x (4096 + 4096): what PEFT's print_trainable_parameters reports for
  // Llama-2-7B with q_proj/v_proj at r=8.
  EXPECT_NE(r.output.find("64 layers, 4194304 trainable"), std::string::npos) << r.output;
}

// The plan's linear layers are the built model's, name for name and shape for shape, for every
// architecture of the registry (its hf-zoo fixture): what `forma model info --lora-r` counts.
TEST(LoraTraining, PlannedLinearsAreTheBuiltModelsForEveryArchitecture) {
  for (const auto& zoo : test::zoo_fixtures()) {
    if (!zoo.supported) continue;
    const ModelConfig c = load_model_config(test::fixture("hf-zoo/" + zoo.dir));
    CausalLM model(c);
    const auto modules = model->named_modules("", /*include_self=*/false);
    std::map<std::string, std::pair<int64_t, int64_t>> built, planned;
    for (const auto& m : linear_modules(model)) {
      // A copy, not a reference: the dict named_parameters returns is a temporary.
      const torch::Tensor w = modules[m.name]->named_parameters(/*recurse=*/false)["weight"];
      built[m.name] = {w.size(1), w.size(0)};
    }
    for (const auto& l : planned_linears(c)) planned[l.module.name] = {l.in, l.out};
    for (const auto& [name, shape] : planned) {
      EXPECT_TRUE(built.count(name) && built[name] == shape) << zoo.dir << ": planned " << name;
    }
    for (const auto& [name, shape] : built) EXPECT_TRUE(planned.count(name)) << zoo.dir << ": built " << name;
  }
}

}  // namespace forma::peft::lora_train_test

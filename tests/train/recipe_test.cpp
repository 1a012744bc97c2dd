// Recipe parsing: defaults, --set overrides, and errors that name the key and where it came from.
#include <gtest/gtest.h>

#include "forma/core/error.h"
#include "forma/train/recipe.h"

namespace forma::train {
namespace {

const char* kMinimal =
    "model:\n"
    "  path: tiny-llama\n"
    "data:\n"
    "  prefixes: [a/b]\n"
    "training:\n"
    "  seq_len: 32\n";

std::string error_of(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  try {
    parse_recipe(yaml, "r.yaml", overrides);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Recipe, DefaultsAndValues) {
  auto r = parse_recipe(kMinimal, "r.yaml");
  EXPECT_EQ(r.model.path, "tiny-llama");
  EXPECT_EQ(r.data.prefixes, std::vector<std::string>{"a/b"});
  EXPECT_EQ(r.training.seq_len, 32);
  EXPECT_EQ(r.training.micro_batch_size, 8);
  EXPECT_DOUBLE_EQ(r.optimizer.beta2, 0.95);
  EXPECT_EQ(r.schedule.type, "cosine");
  EXPECT_EQ(r.output_dir, "runs/train");
}

TEST(Recipe, SetOverridesValuesListsAndNewSections) {
  auto r = parse_recipe(kMinimal, "r.yaml",
                        {"training.seq_len=64", "optimizer.betas=[0.8, 0.9]", "data.prefixes=x,y",
                         "output_dir=/tmp/o", "tokenizer.path=tok"});
  EXPECT_EQ(r.training.seq_len, 64);
  EXPECT_DOUBLE_EQ(r.optimizer.beta1, 0.8);
  EXPECT_DOUBLE_EQ(r.optimizer.beta2, 0.9);
  EXPECT_EQ(r.data.prefixes, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(r.output_dir, "/tmp/o");
  EXPECT_EQ(r.tokenizer.path, "tok");
  EXPECT_NE(r.snapshot.find("seq_len: 64"), std::string::npos) << r.snapshot;
}

TEST(Recipe, UnknownKeyInFileNamesKeyAndLine) {
  auto e = error_of(std::string(kMinimal) + "  sequence_length: 5\n");
  EXPECT_NE(e.find("training.sequence_length"), std::string::npos) << e;
  EXPECT_NE(e.find("r.yaml:7"), std::string::npos) << e;
  auto top = error_of(std::string(kMinimal) + "optimiser:\n  lr: 1\n");
  EXPECT_NE(top.find("'optimiser'"), std::string::npos) << top;
  EXPECT_NE(top.find("r.yaml:7"), std::string::npos) << top;
}

TEST(Recipe, UnknownKeyInSetNamesTheArgument) {
  auto e = error_of(kMinimal, {"training.batch=4"});
  EXPECT_NE(e.find("training.batch"), std::string::npos) << e;
  EXPECT_NE(e.find("--set training.batch=4"), std::string::npos) << e;
}

TEST(Recipe, BadValuesNameTheirKey) {
  auto e = error_of(std::string(kMinimal) + "  micro_batch_size: lots\n");
  EXPECT_NE(e.find("training.micro_batch_size"), std::string::npos) << e;
  EXPECT_NE(e.find("'lots'"), std::string::npos) << e;
  EXPECT_NE(e.find("r.yaml:7"), std::string::npos) << e;
  auto zero = error_of(kMinimal, {"training.max_steps=0"});
  EXPECT_NE(zero.find("training.max_steps"), std::string::npos) << zero;
  EXPECT_NE(zero.find("--set"), std::string::npos) << zero;
  auto sched = error_of(kMinimal, {"schedule.type=exponential"});
  EXPECT_NE(sched.find("schedule.type"), std::string::npos) << sched;
  auto betas = error_of(kMinimal, {"optimizer.betas=[0.9]"});
  EXPECT_NE(betas.find("optimizer.betas"), std::string::npos) << betas;
}

TEST(Recipe, PrecisionAndDeviceTakeTheirValuesOnly) {
  for (const char* ok : {"training.precision=bf16", "training.precision=fp16", "training.device=cuda:1",
                         "training.device=cpu"}) {
    EXPECT_EQ(error_of(kMinimal, {ok}), "") << ok;
  }
  auto e = error_of(kMinimal, {"training.precision=fp8"});
  EXPECT_NE(e.find("training.precision"), std::string::npos) << e;
  EXPECT_NE(e.find("fp32, bf16 or fp16"), std::string::npos) << e;
  e = error_of(kMinimal, {"training.device=tpu"});
  EXPECT_NE(e.find("training.device"), std::string::npos) << e;
}

TEST(Recipe, MissingRequiredAndBrokenYaml) {
  EXPECT_NE(error_of("data:\n  prefixes: [x]\n").find("model.path"), std::string::npos);
  auto broken = error_of("model:\n  path: [unclosed\n");
  EXPECT_NE(broken.find("r.yaml:"), std::string::npos) << broken;
  EXPECT_NE(error_of(kMinimal, {"novalue"}).find("novalue"), std::string::npos);
}

// Found by fuzz/fuzz_recipe: a list or mapping used as a key (`? [a]`) escaped as yaml-cpp's
// TypedBadConversion instead of a forma::Error.
TEST(Recipe, NonScalarKeysAreErrorsWithTheirLine) {
  EXPECT_NE(error_of("? [a]\n: 1\n").find("r.yaml:1:3: a key must be a name"), std::string::npos)
      << error_of("? [a]\n: 1\n");
  std::string inner = error_of(std::string(kMinimal) + "tokenizer:\n  ? {x: 1}\n  : 2\n");
  EXPECT_NE(inner.find("r.yaml:8:5: a key must be a name"), std::string::npos) << inner;
}

TEST(Recipe, ParallelSectionDefaultsValuesAndRefusals) {
  auto r = parse_recipe(kMinimal, "r.yaml");
  EXPECT_EQ(r.parallel.data_parallel, 0);  // auto: WORLD_SIZE / the other dimensions
  EXPECT_EQ(r.parallel.zero_stage, 0);
  auto set = parse_recipe(std::string(kMinimal) + "parallel:\n  data_parallel: 4\n  zero_stage: 1\n", "r.yaml");
  EXPECT_EQ(set.parallel.data_parallel, 4);
  EXPECT_EQ(set.parallel.zero_stage, 1);
  auto stage = error_of(kMinimal, {"parallel.zero_stage=2"});
  EXPECT_NE(stage.find("parallel.zero_stage: 2 is not supported"), std::string::npos) << stage;
  auto pp = error_of(std::string(kMinimal) + "parallel:\n  pipeline_parallel: 2\n");
  EXPECT_NE(pp.find("r.yaml:8"), std::string::npos) << pp;
  EXPECT_NE(pp.find("parallel.pipeline_parallel: 2 is not yet supported"), std::string::npos) << pp;
  auto tp = parse_recipe(kMinimal, "r.yaml", {"parallel.tensor_parallel=2", "parallel.sequence_parallel=true",
                                             "parallel.timeout_minutes=0.5"});
  EXPECT_EQ(tp.parallel.tensor_parallel, 2);
  EXPECT_TRUE(tp.parallel.sequence_parallel);
  EXPECT_EQ(tp.parallel.timeout_minutes, 0.5);
  auto zero_tp = error_of(kMinimal, {"parallel.tensor_parallel=0"});
  EXPECT_NE(zero_tp.find("parallel.tensor_parallel: must be >= 1"), std::string::npos) << zero_tp;
  auto timeout = error_of(kMinimal, {"parallel.timeout_minutes=0"});
  EXPECT_NE(timeout.find("parallel.timeout_minutes: must be > 0"), std::string::npos) << timeout;
  auto unknown = error_of(kMinimal, {"parallel.dp=2"});
  EXPECT_NE(unknown.find("unknown key 'parallel.dp'"), std::string::npos) << unknown;
  EXPECT_NE(error_of(kMinimal, {"parallel.data_parallel=-1"}).find("parallel.data_parallel"), std::string::npos);
}

}  // namespace
}  // namespace forma::train

namespace forma::train {
namespace {

TEST(Recipe, DuplicateKeyIsAnErrorNamingBothLines) {
  auto e = error_of(std::string(kMinimal) + "  micro_batch_size: 2\n  seq_len: 64\n");
  EXPECT_NE(e.find("r.yaml:8:3: training.seq_len: duplicate key (first at line 6)"), std::string::npos) << e;
  auto section = error_of(std::string(kMinimal) + "training:\n  seq_len: 64\n");
  EXPECT_NE(section.find("r.yaml:7:1: training: duplicate key (first at line 5)"), std::string::npos) << section;
}

TEST(Recipe, ThreadsBeyondWhatTheMachineCanRunAreRefused) {
  auto e = error_of(kMinimal, {"training.threads=100000"});
  EXPECT_NE(e.find("training.threads"), std::string::npos) << e;
  EXPECT_NE(e.find("cores"), std::string::npos) << e;
  EXPECT_EQ(error_of(kMinimal, {"training.threads=2"}), "");
}

}  // namespace
}  // namespace forma::train

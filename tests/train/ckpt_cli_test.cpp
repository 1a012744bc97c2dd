// `forma ckpt info|merge|reshard` as a user runs them on a checkpoint `forma train` wrote: info
// reports what the fixture's shapes say; a checkpoint resharded for tensor_parallel 2 resumes in
// one process on the uninterrupted run's curve, bit for bit; merged, it generates the same greedy
// tokens as the checkpoint itself.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "forma/core/files.h"
#include "forma/io/safetensors.h"
#include "test_paths.h"
#include "train_fixture.h"

// A named namespace: unity builds compile several test files as one unit.
namespace forma::ckpt_cli_test {

namespace fs = std::filesystem;

std::vector<std::string> train_args(const std::string& data, const std::string& out, std::vector<std::string> extra) {
  std::vector<std::string> args{"train", "--config", test::tiny_recipe_path()};
  for (auto& o : test::tiny_overrides(data, out)) args.insert(args.end(), {"--set", o});
  args.insert(args.end(), {"--set", "training.max_steps=8", "--set", "checkpoint.interval=4"});
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

nlohmann::json info_json(const std::string& dir) {
  auto r = test::run_forma("ckpt info --json '" + dir + "'", /*with_stderr=*/false);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return r.exit_code == 0 ? nlohmann::json::parse(r.output) : nlohmann::json();
}

TEST(CkptCli, InfoReshardResumeAndMerge) {
  auto dir = test::scratch_dir();
  auto data = test::write_pattern_dataset(dir);
  auto straight = test::run_forma(train_args(data, dir + "/a", {}));
  ASSERT_EQ(straight.exit_code, 0) << straight.output;
  auto first = test::run_forma(train_args(data, dir + "/b", {"--stop-after", "4"}));
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const std::string step4 = dir + "/b/checkpoints/step-0000004";

  // info: every weight of the fixture's model.safetensors (HF names are forma's for Llama) with its
  // shape, and its AdamW moments likewise; the step count is one int64.
  auto info = info_json(dir + "/b/checkpoints");  // a checkpoints folder means its latest
  EXPECT_EQ(info["committed"], true);
  EXPECT_EQ(info["step"], 4);
  EXPECT_EQ(info["layout"]["world_size"], 1);
  EXPECT_EQ(info["layout"]["tensor_parallel"], 1);
  std::map<std::string, nlohmann::json> tensors;
  for (const auto& t : info["tensors"]) tensors[t["name"].get<std::string>()] = t;
  SafetensorsFile fixture(test::fixture("hf-tiny/llama/model.safetensors"));
  EXPECT_EQ(tensors.size(), fixture.names().size() * 4);
  for (const auto& name : fixture.names()) {
    const auto& shape = fixture.get(name).shape;
    EXPECT_EQ(tensors[name]["shape"].get<std::vector<int64_t>>(), shape) << name;
    EXPECT_EQ(tensors[name]["dtype"], "F32") << name;
    EXPECT_EQ(tensors["optim/" + name + ".exp_avg_sq"]["shape"].get<std::vector<int64_t>>(), shape) << name;
    EXPECT_EQ(tensors["optim/" + name + ".step"]["dtype"], "I64") << name;
  }
  auto text = test::run_forma("ckpt info '" + step4 + "'");
  EXPECT_NE(text.output.find("committed   yes"), std::string::npos) << text.output;
  EXPECT_NE(text.output.find("model.layers.1.mlp.down_proj.weight"), std::string::npos) << text.output;

  // Resharded for 2 tensor-parallel ranks (then also 2 data-parallel ones): the layout changes.
  auto reshard =
      test::run_forma("ckpt reshard '" + step4 + "' --to '" + dir + "/tp2' --set parallel.tensor_parallel=2");
  ASSERT_EQ(reshard.exit_code, 0) << reshard.output;
  EXPECT_EQ(info_json(dir + "/tp2")["layout"]["tensor_parallel"], 2);
  EXPECT_EQ(info_json(dir + "/tp2")["tensors"][0]["pieces"], 2);  // lm_head.weight, split over the vocabulary
  ASSERT_EQ(test::run_forma("ckpt reshard '" + dir + "/tp2' --to '" + dir + "/tp2dp2' --set parallel.data_parallel=2")
                .exit_code, 0);
  EXPECT_EQ(info_json(dir + "/tp2dp2")["layout"]["world_size"], 4);

  // One process resumes the tp=2 checkpoint: the same numbers, so the same curve bit for bit.
  auto resumed = test::run_forma(train_args(data, dir + "/b", {"--resume", dir + "/tp2dp2"}));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed from " + dir + "/tp2dp2 at step 4"), std::string::npos) << resumed.output;
  auto want = test::logged_losses(dir + "/a/metrics.jsonl");
  ASSERT_EQ(want.size(), 8u);
  EXPECT_EQ(test::logged_losses(dir + "/b/metrics.jsonl"), want);

  // Merged into one HF folder: the weights the one-process checkpoint holds, the same generation.
  auto merge = test::run_forma("ckpt merge '" + dir + "/tp2' --to '" + dir + "/merged'");
  ASSERT_EQ(merge.exit_code, 0) << merge.output;
  EXPECT_FALSE(fs::exists(dir + "/tp2/model.safetensors"));
  auto unmerged = test::run_forma("generate --model '" + dir + "/tp2' --prompt-ids 5 --max-new-tokens 1");
  EXPECT_EQ(unmerged.exit_code, 1);
  EXPECT_NE(unmerged.output.find("forma ckpt merge"), std::string::npos) << unmerged.output;
  EXPECT_EQ(read_file(dir + "/merged/model.safetensors"), read_file(step4 + "/model.safetensors"));
  auto expected = test::greedy_ids(step4, "5,17,33,90", 12);
  EXPECT_EQ(expected.size(), 12u);
  EXPECT_EQ(test::greedy_ids(dir + "/merged", "5,17,33,90", 12), expected);
}

TEST(CkptCli, ErrorsNameWhatIsWrong) {
  auto dir = test::scratch_dir();
  auto data = test::write_pattern_dataset(dir);
  auto trained = test::run_forma(train_args(data, dir + "/a", {"--stop-after", "2"}));
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  const std::string ckpt = dir + "/a/checkpoints/latest";
  auto three = test::run_forma("ckpt reshard '" + ckpt + "' --to '" + dir + "/x' --set parallel.tensor_parallel=3");
  EXPECT_EQ(three.exit_code, 1);
  EXPECT_NE(three.output.find("num_attention_heads=4 is not divisible by tensor_parallel=3"), std::string::npos)
      << three.output;
  auto key = test::run_forma("ckpt reshard '" + ckpt + "' --to '" + dir + "/x' --set parallel.pipeline_parallel=2");
  EXPECT_EQ(key.exit_code, 1);
  EXPECT_NE(key.output.find("--set parallel.pipeline_parallel=2: unknown key"), std::string::npos) << key.output;
  EXPECT_FALSE(fs::exists(dir + "/x"));
  auto hf = test::run_forma("ckpt info '" + test::fixture("hf-tiny/llama") + "'");
  EXPECT_EQ(hf.exit_code, 1);
  EXPECT_NE(hf.output.find("no metadata.json"), std::string::npos) << hf.output;
  // Without its commit marker a checkpoint is reported as such (and never resumed from).
  fs::copy(fs::canonical(ckpt), dir + "/uncommitted", fs::copy_options::recursive);
  fs::remove(dir + "/uncommitted/manifest.json");
  // It still describes what it can, and exits 1 (a script must not take it for a usable checkpoint).
  auto uncommitted = test::run_forma("ckpt info --json '" + dir + "/uncommitted'", /*with_stderr=*/false);
  EXPECT_EQ(uncommitted.exit_code, 1) << uncommitted.output;
  auto info = nlohmann::json::parse(uncommitted.output);
  EXPECT_EQ(info["committed"], false);
  EXPECT_EQ(info["step"], 2);
  EXPECT_NE(info["not_committed_because"].get<std::string>().find("no manifest.json"), std::string::npos) << info;
  auto text = test::run_forma("ckpt info '" + dir + "/uncommitted'");
  EXPECT_EQ(text.exit_code, 1) << text.output;
  EXPECT_NE(text.output.find("committed   NO: "), std::string::npos) << text.output;
  EXPECT_NE(text.output.find("error: the checkpoint is not committed: " + dir + "/uncommitted: no manifest.json"),
            std::string::npos)
      << text.output;
}

// ckpt merge, ckpt reshard and convert refuse to write onto the folder they read (also through the
// `latest` link), naming it, before reading or writing anything; the checkpoint stays committed.
TEST(CkptCli, OutputOntoTheSourceIsRefused) {
  auto dir = test::scratch_dir();
  auto data = test::write_pattern_dataset(dir);
  auto trained = test::run_forma(train_args(data, dir + "/a", {"--stop-after", "2"}));
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  const std::string step2 = dir + "/a/checkpoints/step-0000002", latest = dir + "/a/checkpoints/latest";
  const std::string before = read_file(step2 + "/manifest.json");
  for (const std::string& command :
       {"ckpt merge '" + step2 + "' --to '" + step2 + "'", "ckpt merge '" + latest + "' --to '" + step2 + "/'",
        "ckpt reshard '" + step2 + "' --to '" + latest + "' --set parallel.tensor_parallel=2",
        "convert --from '" + step2 + "' --to '" + latest + "' --dtype bf16"}) {
    auto r = test::run_forma(command);
    EXPECT_EQ(r.exit_code, 1) << command << "\n" << r.output;
    EXPECT_NE(r.output.find("error: --to "), std::string::npos) << command << "\n" << r.output;
    EXPECT_NE(r.output.find("itself"), std::string::npos) << command << "\n" << r.output;
  }
  EXPECT_EQ(read_file(step2 + "/manifest.json"), before);
  EXPECT_EQ(test::run_forma("ckpt info '" + step2 + "'").exit_code, 0);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir + "/a/checkpoints"), fs::directory_iterator()), 2);

  // logits --out onto the model's own weights, eval --out onto its data: refused, nothing replaced.
  const std::string weights = read_file(step2 + "/model.safetensors");
  auto logits = test::run_forma("logits --model '" + step2 + "' --prompt-ids 1,2 --out '" + step2 +
                                "/model.safetensors'");
  EXPECT_EQ(logits.exit_code, 1) << logits.output;
  EXPECT_NE(logits.output.find("error: --out " + step2 + "/model.safetensors: that is the input"), std::string::npos)
      << logits.output;
  EXPECT_EQ(read_file(step2 + "/model.safetensors"), weights);
  write_file_atomic(dir + "/doc.txt", "one two three four five six seven\n");
  auto eval = test::run_forma("eval --model '" + step2 + "' --task perplexity --data '" + dir + "/doc.txt' --out '" +
                              dir + "/doc.txt'");
  EXPECT_EQ(eval.exit_code, 1) << eval.output;
  EXPECT_NE(eval.output.find("error: --out " + dir + "/doc.txt: that is the input"), std::string::npos)
      << eval.output;
  EXPECT_EQ(read_file(dir + "/doc.txt"), "one two three four five six seven\n");
}

// A step folder whose files no longer match its manifest is refused wherever a model folder is
// loaded (generate, logits, eval, convert; resume already did), naming the file.
TEST(CkptCli, DamagedCheckpointIsRefusedForInferenceAndConversion) {
  auto dir = test::scratch_dir();
  auto data = test::write_pattern_dataset(dir);
  auto trained = test::run_forma(train_args(data, dir + "/a", {"--stop-after", "2"}));
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  const std::string good = dir + "/a/checkpoints/step-0000002", bad = dir + "/damaged";
  fs::copy(good, bad, fs::copy_options::recursive);
  {
    // One byte of the last weight flipped: a valid safetensors file with another value in it.
    std::fstream f(bad + "/model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(-1, std::ios::end);
    char c = 0;
    f.get(c);
    f.seekp(-1, std::ios::end);
    f.put(static_cast<char>(c ^ 0x01));
  }
  EXPECT_EQ(test::greedy_ids(good, "5,17", 2).size(), 2u);  // the undamaged one loads
  for (const std::string& command :
       {"generate --model '" + bad + "' --prompt-ids 5,17 --max-new-tokens 2",
        "logits --model '" + bad + "' --prompt-ids 5,17 --out '" + dir + "/l.safetensors'",
        "eval --model '" + bad + "' --task perplexity --data '" + test::book("chapter_1.txt") + "'",
        "convert --from '" + bad + "' --to '" + dir + "/converted' --dtype bf16"}) {
    auto r = test::run_forma(command);
    EXPECT_EQ(r.exit_code, 1) << command << "\n" << r.output;
    EXPECT_NE(r.output.find("error: " + bad + ": file 'model.safetensors' checksum"), std::string::npos)
        << command << "\n" << r.output;
  }
  EXPECT_FALSE(fs::exists(dir + "/converted"));
  EXPECT_FALSE(fs::exists(dir + "/l.safetensors"));
}

}  // namespace forma::ckpt_cli_test

// `forma train` as a process: exact resume, refusal of damaged checkpoints with fallback, SIGTERM,
// recipe errors, outputs (metrics.jsonl, loss.svg, HF folder).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "forma/core/files.h"
#include "forma/train/checkpoint.h"
#include "forma/train/checkpoint_dir.h"
#include "test_paths.h"
#include "train_fixture.h"

namespace forma::test {
namespace {
namespace fs = std::filesystem;

std::vector<std::string> train_args(const std::string& data, const std::string& out, std::vector<std::string> extra) {
  std::vector<std::string> args{"train", "--config", tiny_recipe_path()};
  for (auto& o : tiny_overrides(data, out)) args.insert(args.end(), {"--set", o});
  for (auto& e : extra) args.push_back(e);
  return args;
}

TEST(TrainCli, ResumeReproducesTheUninterruptedRunBitForBit) {
  auto dir = scratch_dir();
  auto data = write_pattern_dataset(dir);
  std::vector<std::string> common{"--set", "training.max_steps=12", "--set", "checkpoint.interval=3"};
  auto straight = run_forma(train_args(data, dir + "/a", common));
  ASSERT_EQ(straight.exit_code, 0) << straight.output;

  auto first = common;
  first.insert(first.end(), {"--stop-after", "6"});
  auto part1 = run_forma(train_args(data, dir + "/b", first));
  ASSERT_EQ(part1.exit_code, 0) << part1.output;
  EXPECT_EQ(fs::read_symlink(dir + "/b/checkpoints/latest").string(), "step-0000006");
  auto second = common;
  second.push_back("--resume");
  auto part2 = run_forma(train_args(data, dir + "/b", second));
  ASSERT_EQ(part2.exit_code, 0) << part2.output;

  auto a = logged_losses(dir + "/a/metrics.jsonl"), b = logged_losses(dir + "/b/metrics.jsonl");
  ASSERT_EQ(a.size(), 12u);
  EXPECT_EQ(a, b);  // same steps, same loss text (17 significant digits): bit-equal
  EXPECT_EQ(read_file(dir + "/a/checkpoints/latest/model.safetensors"),
            read_file(dir + "/b/checkpoints/latest/model.safetensors"));
  // The distributed format's one shard (weights and AdamW state) and its metadata.
  EXPECT_EQ(read_file(dir + "/a/checkpoints/latest/shards/rank-00000.safetensors"),
            read_file(dir + "/b/checkpoints/latest/shards/rank-00000.safetensors"));
  EXPECT_EQ(read_file(dir + "/a/checkpoints/latest/metadata.json"),
            read_file(dir + "/b/checkpoints/latest/metadata.json"));
  // keep_last 3 of steps 3, 6, 9, 12
  EXPECT_FALSE(fs::exists(dir + "/a/checkpoints/step-0000003"));
  EXPECT_TRUE(fs::exists(dir + "/a/checkpoints/step-0000006"));
  // Outputs: the HF folder, the plot, eval lines.
  for (auto* f : {"config.json", "model.safetensors", "generation_config.json", "trainer_state.json",
                  "metadata.json", "shards/rank-00000.safetensors", "manifest.json"}) {
    EXPECT_TRUE(fs::exists(dir + "/a/checkpoints/latest/" + f)) << f;
  }
  auto svg = read_file(dir + "/a/loss.svg");
  EXPECT_NE(svg.find("<svg"), std::string::npos);
  EXPECT_NE(svg.find("<polyline"), std::string::npos);
  EXPECT_NE(read_file(dir + "/a/metrics.jsonl").find("\"val_loss\""), std::string::npos);
}

TEST(TrainCli, CorruptCheckpointIsRefusedAndResumeFallsBack) {
  auto dir = scratch_dir();
  auto data = write_pattern_dataset(dir);
  std::vector<std::string> common{"--set", "training.max_steps=8", "--set", "checkpoint.interval=2"};
  auto straight = run_forma(train_args(data, dir + "/a", common));
  ASSERT_EQ(straight.exit_code, 0) << straight.output;
  auto first = common;
  first.insert(first.end(), {"--stop-after", "6"});
  ASSERT_EQ(run_forma(train_args(data, dir + "/b", first)).exit_code, 0);
  {  // one flipped byte in the newest checkpoint's weights (the size stays the same)
    std::fstream f(dir + "/b/checkpoints/step-0000006/model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(-5, std::ios::end);
    char c = static_cast<char>(f.get());
    f.seekp(-5, std::ios::end);
    f.put(static_cast<char>(c ^ 0x40));
  }
  fs::remove(dir + "/b/checkpoints/step-0000004/manifest.json");  // and the one before it is partial
  auto second = common;
  second.push_back("--resume");
  auto resumed = run_forma(train_args(data, dir + "/b", second));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("model.safetensors"), std::string::npos) << resumed.output;
  EXPECT_NE(resumed.output.find("checksum"), std::string::npos) << resumed.output;
  EXPECT_NE(resumed.output.find("no manifest.json"), std::string::npos) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed from " + dir + "/b/checkpoints/step-0000002"), std::string::npos)
      << resumed.output;
  EXPECT_EQ(logged_losses(dir + "/a/metrics.jsonl"), logged_losses(dir + "/b/metrics.jsonl"));
}

TEST(TrainCli, NoValidCheckpointIsAClearError) {
  auto dir = scratch_dir();
  auto data = write_pattern_dataset(dir);
  auto r = run_forma(train_args(data, dir + "/none", {"--resume"}));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("error: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("checkpoint"), std::string::npos) << r.output;
}

TEST(TrainCli, SigtermFinishesTheStepSavesAndExitsZero) {
  auto dir = scratch_dir();
  auto data = write_pattern_dataset(dir);
  auto args = train_args(data, dir + "/out", {"--set", "training.max_steps=100000", "--set", "checkpoint.interval=0"});
  std::string binary = forma_binary();
  std::vector<char*> argv{binary.data()};
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  auto metrics = dir + "/out/metrics.jsonl";
  for (int i = 0; i < 600 && logged_losses(metrics).size() < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_GE(logged_losses(metrics).size(), 3u) << "training did not start";
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  auto latest = dir + "/out/checkpoints/latest";
  ASSERT_TRUE(fs::exists(latest));
  EXPECT_NO_THROW(train::verify_checkpoint(latest, train::required_checkpoint_files()));
  auto losses = logged_losses(metrics);
  auto state = read_file(latest + "/trainer_state.json");
  EXPECT_NE(state.find("\"step\": " + std::to_string(losses.back().first)), std::string::npos) << state;
}

TEST(TrainCli, RecipeErrorsNameTheKey) {
  auto dir = scratch_dir();
  auto r = run_forma(train_args(dir + "/x", dir + "/out", {"--set", "training.bogus=1"}));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("training.bogus"), std::string::npos) << r.output;
  auto bad = run_forma(train_args(dir + "/x", dir + "/out", {"--set", "optimizer.lr=fast"}));
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.output.find("optimizer.lr"), std::string::npos) << bad.output;
  EXPECT_NE(bad.output.find("'fast'"), std::string::npos) << bad.output;
  write_file_atomic(dir + "/r.yaml", "model:\n  path: m\ntraining:\n  micro_batch: 3\n");
  auto file = run_forma({"train", "--config", dir + "/r.yaml"});
  EXPECT_EQ(file.exit_code, 1);
  EXPECT_NE(file.output.find(dir + "/r.yaml:4"), std::string::npos) << file.output;
  EXPECT_NE(file.output.find("training.micro_batch"), std::string::npos) << file.output;
}

}  // namespace
}  // namespace forma::test

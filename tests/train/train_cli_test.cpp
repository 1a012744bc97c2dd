// `forma train` as a process: exact resume, refusal of damaged checkpoints with fallback, SIGTERM,
// recipe errors, outputs (metrics.jsonl, loss.svg, HF folder).
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
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

// A save that fails (here: a file size limit the weights exceed, as a full disk would) removes its
// partial .tmp-step folder, stops the run with an error that says so, and leaves the last committed
// checkpoint as `latest`; a stale .tmp-step folder of a killed save is removed when a run starts.
TEST(TrainCli, FailedSaveLeavesNoPartialFolderAndKeepsTheLastCheckpoint) {
  auto dir = scratch_dir();
  auto data = write_pattern_dataset(dir);
  std::vector<std::string> common{"--set", "training.max_steps=4", "--set", "checkpoint.interval=2"};
  auto first = common;
  first.insert(first.end(), {"--stop-after", "2"});
  ASSERT_EQ(run_forma(train_args(data, dir + "/b", first)).exit_code, 0);
  const std::string checkpoints = dir + "/b/checkpoints";
  fs::create_directories(checkpoints + "/.tmp-step-0000099/shards");  // what kill -9 during a save leaves
  write_file_atomic(checkpoints + "/.tmp-step-0000099/shards/rank-00000.safetensors", std::string(1000, 'x'));

  auto second = common;
  second.push_back("--resume");
  std::string command = "ulimit -f 200 && trap '' XFSZ && exec '" + forma_binary() + "'";  // files <= 100 KiB
  for (auto& a : train_args(data, dir + "/b", second)) command += " '" + a + "'";
  auto failed = run_command(command);
  EXPECT_EQ(failed.exit_code, 1) << failed.output;
  EXPECT_NE(failed.output.find("removed " + checkpoints + "/.tmp-step-0000099"), std::string::npos) << failed.output;
  EXPECT_NE(failed.output.find("error: the checkpoint of step 4 could not be saved in " + checkpoints),
            std::string::npos)
      << failed.output;
  EXPECT_NE(failed.output.find("File too large"), std::string::npos) << failed.output;
  std::vector<std::string> left;
  for (auto& entry : fs::directory_iterator(checkpoints)) left.push_back(entry.path().filename().string());
  std::sort(left.begin(), left.end());
  EXPECT_EQ(left, (std::vector<std::string>{"latest", "step-0000002"}));
  EXPECT_EQ(fs::read_symlink(checkpoints + "/latest").string(), "step-0000002");
  EXPECT_NO_THROW(train::verify_checkpoint(checkpoints + "/latest", train::required_checkpoint_files()));

  // With room again, the run continues from the checkpoint that was kept.
  auto resumed = run_forma(train_args(data, dir + "/b", second));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed from " + checkpoints + "/step-0000002 at step 2"), std::string::npos)
      << resumed.output;
}

// The hint printed on a stop repeats the --set overrides, quoted for a shell (here an output folder
// with a space): run as printed, it resumes this run from its own checkpoint.
TEST(TrainCli, StopHintResumesTheSameRun) {
  auto dir = scratch_dir();
  auto data = write_pattern_dataset(dir);
  const std::string out = dir + "/my run";
  auto stopped = run_forma(train_args(data, out, {"--set", "training.max_steps=4", "--stop-after", "2"}));
  ASSERT_EQ(stopped.exit_code, 0) << stopped.output;
  const std::string marker = "continue with: forma ";
  auto at = stopped.output.find(marker);
  ASSERT_NE(at, std::string::npos) << stopped.output;
  auto end = stopped.output.find('\n', at);
  const std::string hint = stopped.output.substr(at + marker.size(), end - at - marker.size());
  EXPECT_NE(hint.find(" --set 'output_dir=" + out + "'"), std::string::npos) << hint;
  EXPECT_NE(hint.find(" --set training.max_steps=4"), std::string::npos) << hint;
  EXPECT_EQ(hint.substr(hint.size() - 9), " --resume") << hint;
  auto resumed = run_command("'" + forma_binary() + "' " + hint);
  ASSERT_EQ(resumed.exit_code, 0) << hint << "\n" << resumed.output;
  EXPECT_NE(resumed.output.find("resumed from " + out + "/checkpoints/step-0000002 at step 2"), std::string::npos)
      << resumed.output;
  EXPECT_EQ(fs::read_symlink(out + "/checkpoints/latest").string(), "step-0000004");
}

// SIGTERM while the model loads (here: while forma reads model.path, a FIFO the test feeds only
// after sending the signal): the handlers are already installed, so the run stops cleanly before
// its first step, with status 0, nothing trained and nothing saved, and says how to start again.
TEST(TrainCli, SigtermBeforeTheFirstStepStopsWithoutTraining) {
  auto dir = scratch_dir();
  auto data = write_pattern_dataset(dir);
  const std::string fifo = dir + "/config.json";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  auto args = train_args(data, dir + "/out", {"--set", "model.path=" + fifo, "--set", "training.max_steps=4"});
  std::string binary = forma_binary(), log = dir + "/log";
  std::vector<char*> argv{binary.data()};
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1), dup2(fd, 2);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  int fd = -1;  // a non-blocking open for writing succeeds once forma has the FIFO open for reading
  for (int i = 0; i < 6000 && fd < 0; ++i) {
    fd = open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
    if (fd < 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_GE(fd, 0) << "forma never read model.path: " << read_file(log);
  kill(pid, SIGTERM);
  const std::string config = read_file(fixture("hf-tiny/llama/config.json"));
  EXPECT_EQ(write(fd, config.data(), config.size()), static_cast<ssize_t>(config.size()));
  close(fd);
  int status = 0;
  waitpid(pid, &status, 0);
  const std::string output = read_file(log);
  ASSERT_TRUE(WIFEXITED(status)) << output;
  EXPECT_EQ(WEXITSTATUS(status), 0) << output;
  EXPECT_NE(output.find("signal 15 received before the first step"), std::string::npos) << output;
  EXPECT_NE(output.find("training stopped at step 0 (nothing trained, nothing saved)"), std::string::npos) << output;
  EXPECT_EQ(output.find("--resume"), std::string::npos) << output;
  EXPECT_TRUE(logged_losses(dir + "/out/metrics.jsonl").empty());
  EXPECT_FALSE(fs::exists(dir + "/out/checkpoints/latest"));
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

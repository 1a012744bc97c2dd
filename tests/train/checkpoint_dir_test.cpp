// The checkpoint folder protocol: manifest, latest pointer, pruning, refusal of damaged folders
// and fallback to the previous valid one.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "forma/core/error.h"
#include "forma/core/files.h"
#include "forma/train/checkpoint_dir.h"
#include "test_paths.h"

namespace forma::train {
namespace {
namespace fs = std::filesystem;

std::string save(const std::string& dir, int64_t step, int keep = 5) {
  return commit_checkpoint(dir, step, keep, [&](const std::string& tmp) {
    write_file_atomic(tmp + "/a.bin", std::string(100, static_cast<char>(step)));
    write_file_atomic(tmp + "/trainer_state.json", "{\"step\": " + std::to_string(step) + "}");
  });
}

TEST(CheckpointDir, Fnv1aMatchesKnownVectors) {
  auto dir = test::scratch_dir();
  write_file_atomic(dir + "/a", "a");
  write_file_atomic(dir + "/e", "");
  write_file_atomic(dir + "/f", "foobar");
  // Published FNV-1a 64 test vectors.
  EXPECT_EQ(fnv1a64_file(dir + "/e"), 0xcbf29ce484222325ull);
  EXPECT_EQ(fnv1a64_file(dir + "/a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(fnv1a64_file(dir + "/f"), 0x85944171f73967e8ull);
}

TEST(CheckpointDir, CommitWritesManifestLatestAndPrunes) {
  auto dir = test::scratch_dir() + "/ckpt";
  for (int step : {10, 20, 30}) save(dir, step, 2);
  EXPECT_FALSE(fs::exists(dir + "/step-0000010"));
  EXPECT_TRUE(fs::exists(dir + "/step-0000020/manifest.json"));
  EXPECT_EQ(fs::read_symlink(dir + "/latest").string(), "step-0000030");
  EXPECT_TRUE(fs::exists(dir + "/latest/a.bin"));  // the pointer is itself a usable folder
  EXPECT_NO_THROW(verify_checkpoint(dir + "/step-0000030", {"trainer_state.json"}));
  EXPECT_THROW(verify_checkpoint(dir + "/step-0000030", {"optimizer.safetensors"}), Error);
  for (auto& e : fs::directory_iterator(dir)) EXPECT_NE(e.path().filename().string().rfind(".tmp", 0), 0u);
}

TEST(CheckpointDir, FailedWriteLeavesNothingBehind) {
  auto dir = test::scratch_dir() + "/ckpt";
  save(dir, 1);
  EXPECT_THROW(commit_checkpoint(dir, 2, 3, [](const std::string&) { fail("disk full"); }), Error);
  EXPECT_EQ(fs::read_symlink(dir + "/latest").string(), "step-0000001");
  EXPECT_FALSE(fs::exists(dir + "/step-0000002"));
  EXPECT_FALSE(fs::exists(dir + "/.tmp-step-0000002"));
}

TEST(CheckpointDir, CorruptLatestFallsBackToPrevious) {
  auto dir = test::scratch_dir() + "/ckpt";
  save(dir, 1), save(dir, 2), save(dir, 3);
  std::vector<std::string> req{"trainer_state.json"};
  EXPECT_EQ(fs::path(find_resumable_checkpoint("", dir, req)).filename(), "step-0000003");
  {  // flip one byte, same size
    std::fstream f(dir + "/step-0000003/a.bin", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(50);
    f.put('x');
  }
  try {
    verify_checkpoint(dir + "/step-0000003", req);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("checksum"), std::string::npos) << e.what();
  }
  EXPECT_EQ(fs::path(find_resumable_checkpoint("", dir, req)).filename(), "step-0000002");
  fs::remove(dir + "/step-0000002/manifest.json");  // partial: no manifest
  EXPECT_EQ(fs::path(find_resumable_checkpoint(dir, dir, req)).filename(), "step-0000001");
  // A named step folder falls back to the ones older than it.
  EXPECT_EQ(fs::path(find_resumable_checkpoint(dir + "/step-0000003", dir, req)).filename(), "step-0000001");
  fs::remove(dir + "/step-0000001/a.bin");  // missing file
  try {
    find_resumable_checkpoint("", dir, req);
    FAIL();
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("no valid checkpoint"), std::string::npos) << msg;
    EXPECT_NE(msg.find("missing"), std::string::npos) << msg;
  }
}

TEST(CheckpointDir, TruncatedFileIsRefused) {
  auto dir = test::scratch_dir() + "/ckpt";
  auto step = save(dir, 5);
  fs::resize_file(step + "/a.bin", 10);
  try {
    verify_checkpoint(step, {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("a.bin"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace forma::train

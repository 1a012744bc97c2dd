// The distributed checkpoint format on its own: pieces written by several "ranks", merged into
// metadata.json and committed; every slice read back equals the same slice of the full tensor (torch
// narrow); a malformed folder is refused with an error naming the file and the tensor; a folder
// without its commit marker is never resumed from.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>

#include "forma/core/error.h"
#include "forma/core/files.h"
#include "forma/train/checkpoint_dir.h"
#include "forma/train/dist_checkpoint.h"
#include "forma/train/dist_checkpoint_metadata.h"
#include "forma/train/dist_checkpoint_reader.h"
#include "test_paths.h"

// A named namespace: unity builds compile several test files as one unit.
namespace forma::dist_checkpoint_test {

using test::error_of;

namespace fs = std::filesystem;
using train::TensorPiece;

// The global tensors, and how three ranks hold them: blocks of uneven sizes along one or two
// dimensions, whole tensors held by one rank, an int64 counter and a 0-d scalar.
struct Fixture {
  std::map<std::string, torch::Tensor> full;
  std::vector<std::vector<TensorPiece>> ranks{3};

  Fixture() {
    torch::manual_seed(3);
    full["a"] = torch::randn({5, 7});
    full["b"] = torch::randn({6});
    full["d"] = torch::randn({2, 3, 4}, torch::kFloat64);
    full["optim/c.step"] = torch::tensor({int64_t{42}});
    full["s"] = torch::tensor(2.5f);
    block(0, "a", {0, 0}, {3, 4});
    block(1, "a", {0, 4}, {3, 3});
    block(2, "a", {3, 0}, {2, 7});
    block(1, "b", {0}, {6});
    block(0, "d", {0, 0, 0}, {2, 1, 4});
    block(2, "d", {0, 1, 0}, {2, 2, 4});
    block(0, "optim/c.step", {0}, {1});
    block(2, "s", {}, {});
  }

  void block(int rank, const std::string& name, std::vector<int64_t> offsets, const std::vector<int64_t>& lengths) {
    torch::Tensor data = full.at(name);
    for (size_t d = 0; d < offsets.size(); ++d) data = data.narrow(static_cast<int64_t>(d), offsets[d], lengths[d]);
    ranks[static_cast<size_t>(rank)].push_back(TensorPiece{name, full.at(name).sizes().vec(), offsets, data});
  }
};

train::CheckpointLayout three_ranks() {
  train::CheckpointLayout layout;
  layout.world_size = 3, layout.data_parallel = 3, layout.zero_stage = 1;
  return layout;
}

// The protocol as train/checkpoint.cpp runs it, the ranks one after the other. `commit` false: as
// if rank 0 died before the manifest. Returns the folder (the temp folder when not committed).
std::string write_checkpoint(const std::string& checkpoints, int64_t step, const Fixture& f, bool commit = true) {
  std::string tmp = train::prepare_checkpoint_dir(checkpoints, step);
  for (int rank = 0; rank < 3; ++rank) train::write_rank_pieces(tmp, rank, f.ranks[static_cast<size_t>(rank)]);
  auto digests = train::merge_rank_indexes(tmp, 3, three_ranks(), step);
  write_file_atomic(tmp + "/trainer_state.json", "{}");
  if (!commit) return tmp;
  return train::finish_checkpoint(checkpoints, step, 3, digests);
}

#define EXPECT_ERROR_HAS(text, ...)                                                  \
  do {                                                                               \
    std::string message__ = (text);                                                  \
    for (const char* part__ : {__VA_ARGS__}) {                                       \
      EXPECT_NE(message__.find(part__), std::string::npos) << part__ << " in: " << message__; \
    }                                                                                \
  } while (0)

TEST(DistCheckpoint, EverySliceReadsBackAsTheSliceOfTheFullTensor) {
  Fixture f;
  std::string dir = write_checkpoint(test::scratch_dir() + "/ckpt", 7, f);
  EXPECT_EQ(fs::read_symlink(fs::path(dir).parent_path() / "latest").string(), "step-0000007");
  EXPECT_FALSE(fs::exists(dir + "/shards/rank-00000.json"));  // merged into metadata.json
  // The digests the ranks computed are the files' true ones: the manifest verifies.
  EXPECT_NO_THROW(train::verify_checkpoint(dir, {"metadata.json"}));

  train::DistCheckpointReader reader(dir);
  const auto& m = reader.metadata();
  EXPECT_EQ(m.step, 7);
  EXPECT_EQ(m.layout.world_size, 3);
  EXPECT_EQ(m.layout.zero_stage, 1);
  ASSERT_EQ(m.tensors.size(), f.full.size());
  EXPECT_EQ(m.tensors.at("a").pieces.size(), 3u);
  EXPECT_EQ(m.tensors.at("d").dtype, DType::F64);
  EXPECT_EQ(m.tensors.at("optim/c.step").dtype, DType::I64);
  for (const auto& [name, full] : f.full) EXPECT_TRUE(torch::equal(reader.read(name), full)) << name;

  // Every rectangle of "a", most of them across the boundaries of its three pieces.
  const torch::Tensor& a = f.full.at("a");
  int slices = 0;
  for (int64_t r0 = 0; r0 < 5; ++r0) {
    for (int64_t r1 = r0; r1 <= 5; ++r1) {
      for (int64_t c0 = 0; c0 < 7; ++c0) {
        for (int64_t c1 = c0; c1 <= 7; ++c1) {
          torch::Tensor got = reader.read("a", {r0, c0}, {r1 - r0, c1 - c0});
          ASSERT_TRUE(torch::equal(got, a.narrow(0, r0, r1 - r0).narrow(1, c0, c1 - c0)))
              << "rows " << r0 << ".." << r1 << " cols " << c0 << ".." << c1;
          ++slices;
        }
      }
    }
  }
  EXPECT_EQ(slices, 20 * 35);  // with the empty ones
  const torch::Tensor& d = f.full.at("d");
  EXPECT_TRUE(torch::equal(reader.read("d", {1, 0, 1}, {1, 3, 2}), d.narrow(0, 1, 1).narrow(2, 1, 2)));
  EXPECT_ERROR_HAS(error_of([&] { reader.read("a", {4, 0}, {2, 7}); }), "metadata.json", "outside tensor 'a'");
  EXPECT_ERROR_HAS(error_of([&] { reader.read("zz"); }), "metadata.json", "no tensor 'zz'");
}

TEST(DistCheckpoint, MergeRefusesGapsOverlapsDisagreementsAndMissingRanks) {
  auto dir = test::scratch_dir();
  auto merge_error = [&](const std::function<void(Fixture&)>& damage) {
    Fixture f;
    damage(f);
    std::string tmp = train::prepare_checkpoint_dir(dir, 1);
    for (int rank = 0; rank < 3; ++rank) train::write_rank_pieces(tmp, rank, f.ranks[static_cast<size_t>(rank)]);
    return error_of([&] { train::merge_rank_indexes(tmp, 3, three_ranks(), 1); });
  };
  EXPECT_ERROR_HAS(merge_error([](Fixture& f) { f.ranks[2].erase(f.ranks[2].begin()); }), "tensor 'a'",
                   "cover 21 of its 35 elements (a gap)");
  EXPECT_ERROR_HAS(merge_error([](Fixture& f) {
                     f.ranks[2].erase(f.ranks[2].begin());
                     f.block(2, "a", {2, 0}, {3, 7});
                   }),
                   "tensor 'a'", "overlap", "rank-00002.safetensors");
  EXPECT_ERROR_HAS(merge_error([](Fixture& f) { f.block(0, "b", {0}, {6}); }), "tensor 'b'", "overlap");
  EXPECT_ERROR_HAS(merge_error([](Fixture& f) { f.ranks[1][0].global_shape = {5, 8}; }), "tensor 'a'",
                   "rank 0 wrote it as F32 5x7, rank 1 as F32 5x8");
  EXPECT_ERROR_HAS(merge_error([](Fixture& f) { f.ranks[2][0].data = f.ranks[2][0].data.to(torch::kFloat64); }),
                   "tensor 'a'", "F64");

  // A rank that never wrote its part (it crashed): rank 0 cannot commit.
  Fixture f;
  std::string tmp = train::prepare_checkpoint_dir(dir, 2);
  train::write_rank_pieces(tmp, 0, f.ranks[0]);
  train::write_rank_pieces(tmp, 2, f.ranks[2]);
  EXPECT_ERROR_HAS(error_of([&] { train::merge_rank_indexes(tmp, 3, three_ranks(), 2); }), "rank 1",
                   "shards/rank-00001.json");
  // A piece that does not fit its tensor, or a second piece of the same tensor, is refused at once.
  EXPECT_ERROR_HAS(error_of([&] {
                     train::write_rank_pieces(tmp, 1, {TensorPiece{"a", {5, 7}, {3, 5}, torch::zeros({3, 3})}});
                   }),
                   "'a'", "outside");
  EXPECT_ERROR_HAS(error_of([&] {
                     train::write_rank_pieces(tmp, 1, {TensorPiece{"b", {6}, {0}, torch::zeros({3})},
                                                       TensorPiece{"b", {6}, {3}, torch::zeros({3})}});
                   }),
                   "two pieces of 'b'");
}

// Rewrites metadata.json of a copy of a good checkpoint with `edit` and returns the reader's error.
std::string metadata_error(const std::string& good, const std::string& name,
                           const std::function<void(nlohmann::json&)>& edit, bool read_a = false) {
  std::string dir = test::scratch_dir() + "/" + name;
  fs::copy(good, dir, fs::copy_options::recursive);
  auto j = nlohmann::json::parse(read_file(dir + "/metadata.json"));
  edit(j);
  write_file_atomic(dir + "/metadata.json", j.dump());
  return error_of([&] {
    train::DistCheckpointReader reader(dir, /*verify=*/false);
    if (read_a) reader.read("a");
  });
}

TEST(DistCheckpoint, MalformedFoldersAreErrorsNamingTheFileAndTensor) {
  Fixture f;
  std::string good = write_checkpoint(test::scratch_dir() + "/ckpt", 1, f);
  auto piece = [](nlohmann::json& j, const char* tensor, size_t i) -> nlohmann::json& {
    return j["tensors"][tensor]["pieces"][i];
  };
  EXPECT_ERROR_HAS(metadata_error(good, "outside", [&](auto& j) { piece(j, "a", 2)["lengths"] = {3, 7}; }),
                   "metadata.json", "tensor 'a'", "lies outside the tensor's shape [5, 7]");
  EXPECT_ERROR_HAS(metadata_error(good, "escape", [&](auto& j) { piece(j, "b", 0)["file"] = "../b.safetensors"; }),
                   "metadata.json", "tensor 'b'", "not a relative path inside the checkpoint");
  EXPECT_ERROR_HAS(metadata_error(good, "dims", [&](auto& j) { piece(j, "d", 1)["offsets"] = {0, 1}; }),
                   "metadata.json", "tensor 'd' has 3 dimensions");
  EXPECT_ERROR_HAS(metadata_error(good, "dtype", [&](auto& j) { j["tensors"]["s"]["dtype"] = "F17"; }),
                   "metadata.json", "tensor 's'", "unknown dtype");
  EXPECT_ERROR_HAS(metadata_error(good, "layout", [&](auto& j) { j["layout"]["world_size"] = 4; }), "metadata.json",
                   "multiply to 3, but world_size is 4");
  EXPECT_ERROR_HAS(metadata_error(good, "nofield", [&](auto& j) { j["tensors"]["b"].erase("shape"); }),
                   "metadata.json", "tensor 'b'", "'shape'");
  EXPECT_ERROR_HAS(metadata_error(good, "gap", [&](auto& j) { j["tensors"]["a"]["pieces"].erase(1); }),
                   "metadata.json", "tensor 'a'", "a gap");
  // Well-formed metadata that disagrees with the shard file.
  EXPECT_ERROR_HAS(metadata_error(good, "f64", [&](auto& j) { j["tensors"]["a"]["dtype"] = "F64"; }, true),
                   "rank-00000.safetensors", "tensor 'a' is F32", "metadata.json says F64");
  EXPECT_ERROR_HAS(metadata_error(good, "key", [&](auto& j) { piece(j, "a", 0)["key"] = "x"; }, true),
                   "rank-00000.safetensors", "no tensor 'x'", "piece of 'a'");
  EXPECT_ERROR_HAS(metadata_error(good, "lengths", [&](auto& j) {
                     piece(j, "a", 0)["lengths"] = {3, 3};
                     piece(j, "a", 1)["offsets"] = {0, 3};
                     piece(j, "a", 1)["lengths"] = {3, 4};
                   }, true),
                   "rank-00000.safetensors", "tensor 'a' has shape 3x4", "3x3");
  {
    std::string dir = test::scratch_dir() + "/noshard";
    fs::copy(good, dir, fs::copy_options::recursive);
    fs::remove(dir + "/shards/rank-00002.safetensors");
    EXPECT_ERROR_HAS(error_of([&] { train::DistCheckpointReader(dir, false); }), "metadata.json",
                     "shards/rank-00002.safetensors is missing", "tensor '");
    // Verified first (the default), the manifest already says so.
    EXPECT_ERROR_HAS(error_of([&] { train::DistCheckpointReader reader(dir); }), "rank-00002.safetensors",
                     "listed in the manifest is missing");
  }
  std::string text = metadata_error(good, "json", [](auto&) {});
  EXPECT_EQ(text, "(no error)");
  write_file_atomic(good + "/metadata.json", "{\"format\": ");
  EXPECT_ERROR_HAS(error_of([&] { train::DistCheckpointReader(good, false); }), "metadata.json", "not valid JSON");
}

TEST(DistCheckpoint, AFolderWithoutItsCommitMarkerIsNeverLoaded) {
  Fixture f;
  const std::string checkpoints = test::scratch_dir() + "/ckpt";
  write_checkpoint(checkpoints, 1, f);
  write_checkpoint(checkpoints, 2, f);
  // Rank 0 died after the merge, before the manifest: a temp folder with all pieces and metadata.
  std::string tmp = write_checkpoint(checkpoints, 3, f, /*commit=*/false);
  EXPECT_TRUE(fs::exists(tmp + "/metadata.json"));
  // Step 2 lost its manifest (the commit marker) after the fact.
  fs::remove(checkpoints + "/step-0000002/manifest.json");
  const std::vector<std::string> required{"metadata.json"};
  EXPECT_EQ(fs::path(train::find_resumable_checkpoint("", checkpoints, required)).filename(), "step-0000001");
  EXPECT_EQ(fs::path(train::find_resumable_checkpoint(checkpoints + "/step-0000002", checkpoints, required)).filename(),
            "step-0000001");
  EXPECT_ERROR_HAS(error_of([&] { train::DistCheckpointReader reader(tmp); }), "no manifest.json");
  EXPECT_ERROR_HAS(error_of([&] { train::DistCheckpointReader reader(checkpoints + "/step-0000002"); }),
                   "no manifest.json");
}

// Found by fuzz/fuzz_dist_checkpoint_metadata: four sizes of 2^24 (each within its bound) multiplied
// at once overflowed int64 (undefined behaviour; it wrapped to 0 here).
TEST(DistCheckpoint, HugeLayoutSizesAreAnErrorNotAnOverflow) {
  nlohmann::json j = {{"format", train::kDistCheckpointFormat},
                      {"step", 1},
                      {"layout", {{"world_size", 1}, {"pipeline_parallel", 1 << 24}, {"data_parallel", 1 << 24},
                                  {"context_parallel", 1 << 24}, {"tensor_parallel", 1 << 24},
                                  {"sequence_parallel", false}, {"zero_stage", 0}}},
                      {"tensors", nlohmann::json::object()}};
  EXPECT_ERROR_HAS(error_of([&] { train::parse_checkpoint_metadata(j.dump(), "m.json"); }), "m.json",
                   "multiply to more than 1, but world_size is 1");
}

#undef EXPECT_ERROR_HAS

}  // namespace forma::dist_checkpoint_test

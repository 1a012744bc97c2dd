#include "forma/train/dist_checkpoint.h"

#include <fmt/format.h>

#include <filesystem>
#include <set>

#include "forma/core/error.h"
#include "forma/core/files.h"
#include "forma/model/tensor_io.h"

// A named namespace, not an anonymous one: unity builds compile several sources as one unit.
namespace forma::train::dist_checkpoint_detail {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kIndexFormat = "forma-dist-checkpoint-index-1";

std::string hex_digest(uint64_t v) { return fmt::format("{:016x}", v); }

uint64_t parse_hex_digest(const json& j, const std::string& where) {
  check(j.is_string() && j.get<std::string>().size() == 16 &&
            j.get<std::string>().find_first_not_of("0123456789abcdef") == std::string::npos,
        "{}: shard checksum {} is not 16 hex digits", where, j.dump());
  return std::stoull(j.get<std::string>(), nullptr, 16);
}

// One rank's index part: its shard file's digest (when it wrote one) and its pieces.
struct RankIndex {
  std::string shard;  // "" when the rank wrote no pieces
  FileDigest digest;
  std::map<std::string, TensorEntry> tensors;
};

RankIndex read_rank_index(const std::string& dir, int rank) {
  const std::string path = (fs::path(dir) / rank_index_file(rank)).string();
  check(fs::is_regular_file(path), "{}: rank {} wrote no index part {} (did that rank fail?)", dir, rank,
        rank_index_file(rank));
  json j = json::parse(read_file(path), nullptr, /*allow_exceptions=*/false);
  check(!j.is_discarded() && j.is_object(), "{}: not a JSON object", path);
  check(j.value("format", json()) == kIndexFormat, "{}: format is not {}", path, kIndexFormat);
  check(j.value("rank", json()) == rank, "{}: written for rank {}, expected {}", path, j.value("rank", json()).dump(),
        rank);
  RankIndex index;
  const json& shard = j.value("shard", json());
  if (!shard.is_null()) {
    check(shard.is_object() && shard.value("file", json()) == rank_shard_file(rank) &&
              shard.value("size", json()).is_number_unsigned(),
          "{}: 'shard' must name {} with its size", path, rank_shard_file(rank));
    index.shard = rank_shard_file(rank);
    index.digest = FileDigest{shard["size"].get<uint64_t>(), parse_hex_digest(shard.value("fnv1a64", json()), path)};
  }
  const json& tensors = j.value("tensors", json());
  check(tensors.is_object(), "{}: 'tensors' must be an object", path);
  for (auto it = tensors.begin(); it != tensors.end(); ++it) {
    TensorEntry entry = tensor_entry_from_json(it.value(), path, it.key());
    for (const auto& piece : entry.pieces) {
      check(piece.file == index.shard, "{}: tensor '{}': a piece in {}, not in this rank's shard {}", path, it.key(),
            piece.file, index.shard.empty() ? "(none)" : index.shard);
    }
    index.tensors.emplace(it.key(), std::move(entry));
  }
  return index;
}

}  // namespace forma::train::dist_checkpoint_detail

namespace forma::train {

namespace writer_detail = dist_checkpoint_detail;
namespace fs = std::filesystem;

std::string rank_shard_file(int rank) { return fmt::format("shards/rank-{:05d}.safetensors", rank); }
std::string rank_index_file(int rank) { return fmt::format("shards/rank-{:05d}.json", rank); }

void write_rank_pieces(const std::string& dir, int rank, const std::vector<TensorPiece>& pieces) {
  const std::string shard = rank_shard_file(rank);
  std::map<std::string, torch::Tensor> tensors;
  nlohmann::json entries = nlohmann::json::object();
  for (const auto& piece : pieces) {
    check(piece.data.defined(), "checkpoint: rank {}: piece of '{}' has no data", rank, piece.name);
    check(tensors.count(piece.name) == 0, "checkpoint: rank {} holds two pieces of '{}'", rank, piece.name);
    TensorEntry entry;
    entry.dtype = to_dtype(piece.data.scalar_type());
    entry.shape = piece.global_shape;
    PieceLocation location{shard, piece.name, piece.offsets, piece.data.sizes().vec()};
    check(location.offsets.size() == entry.shape.size() && location.lengths.size() == entry.shape.size(),
          "checkpoint: rank {}: piece of '{}' has {} dimensions, its tensor {}", rank, piece.name,
          location.lengths.size(), entry.shape.size());
    for (size_t d = 0; d < entry.shape.size(); ++d) {
      check(location.offsets[d] >= 0 && location.offsets[d] + location.lengths[d] <= entry.shape[d],
            "checkpoint: rank {}: piece [{}] + [{}] of '{}' lies outside its shape {}", rank,
            fmt::join(location.offsets, ", "), fmt::join(location.lengths, ", "), piece.name, shape_text(entry.shape));
    }
    entry.pieces.push_back(location);
    entries[piece.name] = tensor_entry_to_json(entry);
    tensors[piece.name] = piece.data;
  }
  fs::create_directories(fs::path(dir) / "shards");
  nlohmann::json shard_json = nullptr;
  if (!tensors.empty()) {
    const std::string path = (fs::path(dir) / shard).string();
    save_tensors(path, tensors, {{"format", "pt"}});
    // Digested here, by the rank that wrote it, so that rank 0 need not read every shard back.
    FileDigest digest = file_digest(path);
    shard_json = {{"file", shard}, {"size", digest.size}, {"fnv1a64", writer_detail::hex_digest(digest.fnv1a64)}};
  }
  nlohmann::json index = {
      {"format", writer_detail::kIndexFormat}, {"rank", rank}, {"shard", shard_json}, {"tensors", entries}};
  write_file_atomic((fs::path(dir) / rank_index_file(rank)).string(), index.dump(1) + "\n");
}

std::map<std::string, FileDigest> merge_rank_indexes(const std::string& dir, int ranks, const CheckpointLayout& layout,
                                                     int64_t step) {
  CheckpointMetadata metadata;
  metadata.step = step;
  metadata.layout = layout;
  std::map<std::string, FileDigest> digests;
  std::map<std::string, int> first_rank;  // which rank described each tensor first (for errors)
  for (int rank = 0; rank < ranks; ++rank) {
    auto index = writer_detail::read_rank_index(dir, rank);
    if (!index.shard.empty()) digests[index.shard] = index.digest;
    for (auto& [name, entry] : index.tensors) {
      auto [it, inserted] = metadata.tensors.emplace(name, entry);
      if (inserted) {
        first_rank[name] = rank;
        continue;
      }
      check(it->second.dtype == entry.dtype && it->second.shape == entry.shape,
            "checkpoint {}: tensor '{}': rank {} wrote it as {} {}, rank {} as {} {}", dir, name, first_rank[name],
            dtype_name(it->second.dtype), shape_text(it->second.shape), rank, dtype_name(entry.dtype),
            shape_text(entry.shape));
      it->second.pieces.insert(it->second.pieces.end(), entry.pieces.begin(), entry.pieces.end());
    }
  }
  const std::string where = "checkpoint " + dir;
  for (const auto& [name, entry] : metadata.tensors) validate_tensor_coverage(entry, where, name);
  write_file_atomic((fs::path(dir) / kCheckpointMetadataFile).string(), metadata_to_json(metadata));
  for (int rank = 0; rank < ranks; ++rank) fs::remove(fs::path(dir) / rank_index_file(rank));
  return digests;
}

}  // namespace forma::train

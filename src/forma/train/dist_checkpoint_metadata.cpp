#include "forma/train/dist_checkpoint_metadata.h"

#include <fmt/format.h>

#include <filesystem>
#include <limits>

#include "forma/core/error.h"

// A named namespace, not an anonymous one: unity builds compile several sources as one unit.
namespace forma::train::dist_checkpoint_metadata_detail {

using nlohmann::json;

// A JSON integer that fits int64_t.
int64_t json_int(const json& j, const std::string& where, const std::string& what) {
  check(j.is_number_integer() && !(j.is_number_unsigned() && j.get<uint64_t>() > static_cast<uint64_t>(
                                                                 std::numeric_limits<int64_t>::max())),
        "{}: {} must be an integer, got {}", where, what, j.dump());
  return j.get<int64_t>();
}

std::vector<int64_t> json_ints(const json& j, const std::string& where, const std::string& what) {
  check(j.is_array(), "{}: {} must be an array of integers, got {}", where, what, j.dump());
  std::vector<int64_t> out;
  for (const auto& v : j) out.push_back(json_int(v, where, what));
  return out;
}

const json& field(const json& object, const char* key, const std::string& where, const std::string& what) {
  check(object.is_object() && object.contains(key), "{}: {} has no field '{}'", where, what, key);
  return object[key];
}

// A path relative to the checkpoint folder that cannot leave it.
bool is_inside_relative_path(const std::string& text) {
  if (text.empty() || text.find('\0') != std::string::npos) return false;
  std::filesystem::path p(text);
  if (!p.is_relative()) return false;
  for (const auto& part : p) {
    if (part == ".." || part == "." || part.empty()) return false;
  }
  return true;
}

int64_t volume(const std::vector<int64_t>& lengths) {
  int64_t n = 1;
  for (int64_t d : lengths) n *= d;
  return n;
}

bool boxes_overlap(const PieceLocation& a, const PieceLocation& b) {
  if (a.numel() == 0 || b.numel() == 0) return false;
  for (size_t d = 0; d < a.offsets.size(); ++d) {
    if (a.offsets[d] >= b.offsets[d] + b.lengths[d] || b.offsets[d] >= a.offsets[d] + a.lengths[d]) return false;
  }
  return true;
}

std::string piece_text(const PieceLocation& p) {
  return fmt::format("{} '{}' at [{}] of [{}]", p.file, p.key, fmt::join(p.offsets, ", "), fmt::join(p.lengths, ", "));
}

json layout_to_json(const CheckpointLayout& l) {
  return {{"world_size", l.world_size},           {"pipeline_parallel", l.pipeline_parallel},
          {"data_parallel", l.data_parallel},     {"context_parallel", l.context_parallel},
          {"tensor_parallel", l.tensor_parallel}, {"sequence_parallel", l.sequence_parallel},
          {"zero_stage", l.zero_stage}};
}

CheckpointLayout layout_from_json(const json& j, const std::string& where) {
  CheckpointLayout l;
  auto size = [&](const char* key) {
    int64_t v = json_int(field(j, key, where, "layout"), where, std::string("layout.") + key);
    check(v >= 1 && v <= 1 << 24, "{}: layout.{} must be a positive process count, got {}", where, key, v);
    return static_cast<int>(v);
  };
  l.world_size = size("world_size");
  l.pipeline_parallel = size("pipeline_parallel");
  l.data_parallel = size("data_parallel");
  l.context_parallel = size("context_parallel");
  l.tensor_parallel = size("tensor_parallel");
  // Each size is at most 2^24: stopping once the product passes world_size (also at most 2^24) keeps
  // it below 2^48, where four sizes multiplied at once could overflow int64.
  int64_t product = 1;
  for (int size : {l.pipeline_parallel, l.data_parallel, l.context_parallel, l.tensor_parallel}) {
    product *= size;
    if (product > l.world_size) break;
  }
  check(product == l.world_size, "{}: layout: the parallel sizes multiply to {}{}, but world_size is {}", where,
        product > l.world_size ? "more than " : "", product > l.world_size ? l.world_size : product, l.world_size);
  const json& sp = field(j, "sequence_parallel", where, "layout");
  check(sp.is_boolean(), "{}: layout.sequence_parallel must be true or false, got {}", where, sp.dump());
  l.sequence_parallel = sp.get<bool>();
  int64_t zero = json_int(field(j, "zero_stage", where, "layout"), where, "layout.zero_stage");
  check(zero >= 0 && zero <= 3, "{}: layout.zero_stage must be 0..3, got {}", where, zero);
  l.zero_stage = static_cast<int>(zero);
  return l;
}

}  // namespace forma::train::dist_checkpoint_metadata_detail

namespace forma::train {

namespace metadata_detail = dist_checkpoint_metadata_detail;

int64_t PieceLocation::numel() const { return metadata_detail::volume(lengths); }
int64_t TensorEntry::numel() const { return metadata_detail::volume(shape); }

std::string shape_text(const std::vector<int64_t>& shape) {
  return shape.empty() ? std::string("scalar") : fmt::format("{}", fmt::join(shape, "x"));
}

nlohmann::json tensor_entry_to_json(const TensorEntry& entry) {
  nlohmann::json pieces = nlohmann::json::array();
  for (const auto& p : entry.pieces) {
    pieces.push_back({{"file", p.file}, {"key", p.key}, {"offsets", p.offsets}, {"lengths", p.lengths}});
  }
  return {{"dtype", dtype_name(entry.dtype)}, {"shape", entry.shape}, {"pieces", pieces}};
}

TensorEntry tensor_entry_from_json(const nlohmann::json& j, const std::string& where, const std::string& name) {
  const std::string what = fmt::format("tensor '{}'", name);
  check(j.is_object(), "{}: {} must be an object", where, what);
  TensorEntry entry;
  const nlohmann::json& dtype = metadata_detail::field(j, "dtype", where, what);
  check(dtype.is_string() && parse_dtype(dtype.get<std::string>(), &entry.dtype), "{}: {}: unknown dtype {}", where,
        what, dtype.dump());
  entry.shape = metadata_detail::json_ints(metadata_detail::field(j, "shape", where, what), where, what + " shape");
  // Every element must be addressable in bytes: no negative size, no overflow.
  const int64_t limit = std::numeric_limits<int64_t>::max() / static_cast<int64_t>(dtype_size(entry.dtype));
  int64_t numel = 1;
  for (int64_t d : entry.shape) {
    check(d >= 0 && (d == 0 || numel <= limit / d), "{}: {} has an invalid shape [{}]", where, what,
          fmt::join(entry.shape, ", "));
    numel *= d;
  }
  const nlohmann::json& pieces = metadata_detail::field(j, "pieces", where, what);
  check(pieces.is_array() && !pieces.empty(), "{}: {}: 'pieces' must be a non-empty array", where, what);
  for (const auto& pj : pieces) {
    PieceLocation p;
    const nlohmann::json& file = metadata_detail::field(pj, "file", where, what + " piece");
    check(file.is_string() && metadata_detail::is_inside_relative_path(file.get<std::string>()),
          "{}: {}: piece file {} is not a relative path inside the checkpoint", where, what, file.dump());
    p.file = file.get<std::string>();
    const nlohmann::json& key = metadata_detail::field(pj, "key", where, what + " piece");
    check(key.is_string(), "{}: {}: piece key must be a string, got {}", where, what, key.dump());
    p.key = key.get<std::string>();
    const nlohmann::json& offsets = metadata_detail::field(pj, "offsets", where, what + " piece");
    const nlohmann::json& lengths = metadata_detail::field(pj, "lengths", where, what + " piece");
    p.offsets = metadata_detail::json_ints(offsets, where, what + " offsets");
    p.lengths = metadata_detail::json_ints(lengths, where, what + " lengths");
    check(p.offsets.size() == entry.shape.size() && p.lengths.size() == entry.shape.size(),
          "{}: {} has {} dimensions, but piece {} gives {} offsets and {} lengths", where, what, entry.shape.size(),
          p.file, p.offsets.size(), p.lengths.size());
    for (size_t d = 0; d < entry.shape.size(); ++d) {
      check(p.offsets[d] >= 0 && p.lengths[d] >= 0 && p.offsets[d] <= entry.shape[d] &&
                p.lengths[d] <= entry.shape[d] - p.offsets[d],
            "{}: {}: piece {} lies outside the tensor's shape [{}]", where, what, metadata_detail::piece_text(p),
            fmt::join(entry.shape, ", "));
    }
    entry.pieces.push_back(std::move(p));
  }
  return entry;
}

void validate_tensor_coverage(const TensorEntry& entry, const std::string& where, const std::string& name) {
  // Pieces lie inside the tensor (checked when parsed), so they cover it exactly when none overlap
  // and their sizes add up. Pairwise: a tensor has a few pieces (at most one per rank).
  const int64_t total = entry.numel();
  int64_t covered = 0;
  for (size_t i = 0; i < entry.pieces.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      check(!metadata_detail::boxes_overlap(entry.pieces[i], entry.pieces[j]),
            "{}: tensor '{}': pieces {} and {} overlap", where, name, metadata_detail::piece_text(entry.pieces[j]),
            metadata_detail::piece_text(entry.pieces[i]));
    }
    covered += entry.pieces[i].numel();  // no overflow: disjoint pieces inside the tensor sum to <= total
  }
  check(covered == total, "{}: tensor '{}' of shape [{}]: its pieces cover {} of its {} elements (a gap)", where,
        name, fmt::join(entry.shape, ", "), covered, total);
}

std::string metadata_to_json(const CheckpointMetadata& m) {
  nlohmann::json tensors = nlohmann::json::object();
  for (const auto& [name, entry] : m.tensors) tensors[name] = tensor_entry_to_json(entry);
  nlohmann::json j = {{"format", kDistCheckpointFormat},
            {"step", m.step},
            {"layout", metadata_detail::layout_to_json(m.layout)},
            {"tensors", tensors}};
  return j.dump(1) + "\n";
}

CheckpointMetadata parse_checkpoint_metadata(const std::string& text, const std::string& path) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  check(!j.is_discarded(), "{}: not valid JSON", path);
  check(j.is_object(), "{}: must hold a JSON object", path);
  const nlohmann::json& format = metadata_detail::field(j, "format", path, "the metadata");
  check(format == kDistCheckpointFormat, "{}: format {} is not {}", path, format.dump(), kDistCheckpointFormat);
  CheckpointMetadata m;
  m.step = metadata_detail::json_int(metadata_detail::field(j, "step", path, "the metadata"), path, "step");
  check(m.step >= 0, "{}: step must not be negative, got {}", path, m.step);
  m.layout = metadata_detail::layout_from_json(metadata_detail::field(j, "layout", path, "the metadata"), path);
  const nlohmann::json& tensors = metadata_detail::field(j, "tensors", path, "the metadata");
  check(tensors.is_object(), "{}: 'tensors' must be an object", path);
  for (auto it = tensors.begin(); it != tensors.end(); ++it) {
    TensorEntry entry = tensor_entry_from_json(it.value(), path, it.key());
    validate_tensor_coverage(entry, path, it.key());
    m.tensors.emplace(it.key(), std::move(entry));
  }
  return m;
}

}  // namespace forma::train

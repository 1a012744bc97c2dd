#include "forma/model/hf_convert.h"

#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "forma/core/error.h"
#include "forma/core/files.h"
#include "forma/core/log.h"
#include "forma/core/progress.h"
#include "forma/model/hf_io.h"
#include "forma/model/tensor_io.h"
#include "forma/train/checkpoint_dir.h"

namespace forma {

namespace fs = std::filesystem;

namespace {

constexpr int64_t kConvertProgressFromBytes = 256ll << 20;

// One tensor of the source folder and what it becomes.
struct SourceTensor {
  const SafetensorsFile* file = nullptr;
  const TensorInfo* info = nullptr;
  DType out_dtype = DType::F32;
  uint64_t out_bytes = 0;
};

bool is_floating(DType dtype) {
  return dtype == DType::F32 || dtype == DType::F16 || dtype == DType::BF16 || dtype == DType::F64;
}

// Every tensor of `from`, in the order of the source files (shard by shard, by offset inside each
// shard), so that the output keeps the source's grouping of tensors.
std::vector<SourceTensor> list_tensors(const std::map<std::string, std::string>& file_of,
                                       const std::vector<std::unique_ptr<SafetensorsFile>>& files,
                                       const ConvertOptions& options) {
  std::vector<SourceTensor> tensors;
  for (const auto& [name, path] : file_of) {
    auto file = std::find_if(files.begin(), files.end(), [&](const auto& f) { return f->path() == path; });
    SourceTensor t;
    t.file = file->get();
    t.info = &t.file->get(name);  // throws naming the shard when the index lists a missing tensor
    t.out_dtype = options.dtype && is_floating(t.info->dtype) ? *options.dtype : t.info->dtype;
    t.out_bytes = static_cast<uint64_t>(t.info->numel()) * dtype_size(t.out_dtype);
    tensors.push_back(t);
  }
  std::sort(tensors.begin(), tensors.end(), [](const SourceTensor& a, const SourceTensor& b) {
    if (a.file != b.file) return a.file->path() < b.file->path();
    return a.info->data < b.info->data;
  });
  return tensors;
}

// HF's split_torch_state_dict_into_shards: tensors in order; a tensor larger than the limit gets a
// shard of its own; otherwise a new shard starts when the tensor would push the current one over.
std::vector<std::vector<const SourceTensor*>> plan_shards(const std::vector<SourceTensor>& tensors,
                                                          uint64_t max_bytes) {
  std::vector<std::vector<const SourceTensor*>> shards;
  std::vector<const SourceTensor*> current;
  uint64_t current_bytes = 0;
  for (const auto& t : tensors) {
    if (t.out_bytes > max_bytes) {
      shards.push_back({&t});
      continue;
    }
    if (current_bytes + t.out_bytes > max_bytes && !current.empty()) {
      shards.push_back(std::move(current));
      current.clear();
      current_bytes = 0;
    }
    current.push_back(&t);
    current_bytes += t.out_bytes;
  }
  if (!current.empty() || shards.empty()) shards.push_back(std::move(current));
  return shards;
}

// Bytes [begin, end) of the converted tensor `t` into `out`; the source pages read are released.
void convert_chunk(const SourceTensor& t, uint8_t* out, size_t begin, size_t end) {
  const size_t out_size = dtype_size(t.out_dtype), in_size = dtype_size(t.info->dtype);
  const auto first = static_cast<int64_t>(begin / out_size), count = static_cast<int64_t>((end - begin) / out_size);
  const uint8_t* src = t.info->data + first * in_size;
  const size_t src_bytes = count * in_size;
  if (t.out_dtype == t.info->dtype) {
    std::memcpy(out, src, src_bytes);
  } else {
    // Element-aligned source for the conversion kernel (a copy only for oddly laid out files).
    std::unique_ptr<uint8_t[]> aligned;
    const uint8_t* in = src;
    if (reinterpret_cast<uintptr_t>(src) % in_size != 0) {
      aligned.reset(new uint8_t[src_bytes]);
      std::memcpy(aligned.get(), src, src_bytes);
      in = aligned.get();
    }
    auto from = torch::from_blob(const_cast<uint8_t*>(in), {count},
                                 torch::TensorOptions().dtype(to_scalar_type(t.info->dtype)));
    auto to = torch::from_blob(out, {count}, torch::TensorOptions().dtype(to_scalar_type(t.out_dtype)));
    to.copy_(from);  // round to nearest even, as torch's .to(dtype) in HF
  }
  t.file->release_pages(src, src_bytes);
}

std::string shard_name(size_t index, size_t count) {
  if (count == 1) return "model.safetensors";
  return fmt::format("model-{:05d}-of-{:05d}.safetensors", index + 1, count);
}

// config.json with torch_dtype (and the newer "dtype" field, when present) set to `dtype`.
std::string converted_config(const std::string& path, const std::optional<DType>& dtype) {
  nlohmann::ordered_json config;
  try {
    config = nlohmann::ordered_json::parse(read_file(path));
  } catch (const nlohmann::ordered_json::parse_error& e) {
    fail("{}: not valid JSON: {}", path, e.what());
  }
  check(config.is_object(), "{}: expected a JSON object", path);
  if (dtype) {
    config["torch_dtype"] = torch_dtype_name(*dtype);
    if (config.contains("dtype")) config["dtype"] = torch_dtype_name(*dtype);
  }
  return config.dump(2) + "\n";
}

// Files of the source folder that are not written from the tensors: tokenizer files,
// generation_config.json, chat templates, README, ... Weights in other formats are left out.
bool is_other_weights(const std::string& name) {
  static const char* const kWeightExtensions[] = {".safetensors", ".bin", ".pt", ".pth", ".ckpt",
                                                  ".h5", ".msgpack", ".gguf", ".onnx"};
  for (const char* ext : kWeightExtensions) {
    if (fs::path(name).extension() == ext) return true;
  }
  return name.size() > 11 && name.compare(name.size() - 11, 11, ".index.json") == 0;
}

std::vector<std::string> copy_other_files(const fs::path& from, const fs::path& to) {
  std::vector<std::string> copied;
  for (const auto& entry : fs::directory_iterator(from)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_regular_file() || name == "config.json" || name[0] == '.') continue;
    if (is_other_weights(name)) {
      if (fs::path(name).extension() != ".safetensors" && name != "model.safetensors.index.json") {
        log::warn("convert: not copying {} (weights in another format)", entry.path().string());
      }
      continue;
    }
    std::error_code ec;
    fs::copy_file(entry.path(), to / name, ec);
    check(!ec, "cannot copy {} to {}: {}", entry.path().string(), (to / name).string(), ec.message());
    copied.push_back(name);
  }
  std::sort(copied.begin(), copied.end());
  return copied;
}

// Writes the weights, the index, config.json and the other files into the (empty) folder `out`.
ConvertResult write_folder(const fs::path& from, const fs::path& out, const ConvertOptions& options) {
  const std::map<std::string, std::string> file_of = hf_weight_files(from.string());
  std::vector<std::unique_ptr<SafetensorsFile>> files;
  for (const auto& [name, path] : file_of) {
    bool open = std::any_of(files.begin(), files.end(), [&](const auto& f) { return f->path() == path; });
    if (!open) files.push_back(std::make_unique<SafetensorsFile>(path));
  }
  const std::vector<SourceTensor> tensors = list_tensors(file_of, files, options);
  const auto shards = plan_shards(tensors, options.max_shard_bytes);

  ConvertResult result;
  result.tensors = tensors.size();
  for (const auto& t : tensors) result.total_bytes += t.out_bytes;
  std::unique_ptr<Progress> progress;
  if (result.total_bytes >= static_cast<uint64_t>(kConvertProgressFromBytes)) {
    progress = std::make_unique<Progress>("convert", static_cast<int64_t>(result.total_bytes >> 20), "MiB");
  }
  uint64_t written = 0;
  nlohmann::json weight_map = nlohmann::json::object();
  for (size_t s = 0; s < shards.size(); ++s) {
    const std::string name = shard_name(s, shards.size());
    std::vector<TensorToWrite> entries;
    for (const SourceTensor* t : shards[s]) {
      TensorToWrite entry{t->info->name, t->out_dtype, t->info->shape, nullptr, t->out_bytes, {}};
      entry.fill = [t, &written, &progress](uint8_t* chunk, size_t begin, size_t end) {
        convert_chunk(*t, chunk, begin, end);
        written += end - begin;
        if (progress) progress->update(static_cast<int64_t>(written >> 20));
      };
      entries.push_back(std::move(entry));
      weight_map[t->info->name] = name;
    }
    write_safetensors((out / name).string(), entries, {{"format", "pt"}});
    result.weight_files.push_back(name);
  }
  if (progress) progress->finish();
  if (shards.size() > 1) {
    // As transformers writes it: json.dumps(index, indent=2, sort_keys=True) + "\n".
    nlohmann::json index = {{"metadata", {{"total_size", result.total_bytes}}}, {"weight_map", weight_map}};
    write_file_atomic((out / "model.safetensors.index.json").string(), index.dump(2) + "\n");
  }
  write_file_atomic((out / "config.json").string(),
                    converted_config((from / "config.json").string(), options.dtype));
  result.copied_files = copy_other_files(from, out);
  return result;
}

}  // namespace

ConvertResult convert_hf_folder(const std::string& from, const std::string& to, const ConvertOptions& options) {
  check(fs::is_directory(from), "{}: not a folder", from);
  check(fs::exists(fs::path(from) / "config.json"), "{}: no config.json (not a Hugging Face model folder)", from);
  check(options.max_shard_bytes > 0, "convert: the shard size must be positive");
  check_output_is_not_input(to, {from}, "--to");
  train::verify_if_checkpoint(from);  // a training checkpoint's files must match its manifest
  ConvertResult result;
  write_folder_atomic(to, [&](const std::string& tmp) { result = write_folder(fs::path(from), fs::path(tmp), options); });
  return result;
}

DType parse_float_dtype(const std::string& text, const std::string& what) {
  if (text == "bf16" || text == "bfloat16") return DType::BF16;
  if (text == "f16" || text == "fp16" || text == "float16") return DType::F16;
  if (text == "f32" || text == "fp32" || text == "float32") return DType::F32;
  fail("{}: unknown dtype '{}' (expected bf16, f16 or f32)", what, text);
}

const char* torch_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::BF16: return "bfloat16";
    case DType::F16: return "float16";
    case DType::F32: return "float32";
    case DType::F64: return "float64";
    default: fail("no torch_dtype name for {}", dtype_name(dtype));
  }
}

uint64_t parse_byte_size(const std::string& text, const std::string& what) {
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  std::string unit = text.substr(digits);
  for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  static const std::pair<const char*, uint64_t> kUnits[] = {
      {"", 1},          {"B", 1},           {"KB", 1000},      {"MB", 1000000},
      {"GB", 1000000000}, {"KIB", 1ull << 10}, {"MIB", 1ull << 20}, {"GIB", 1ull << 30}};
  const auto* unit_entry = std::find_if(std::begin(kUnits), std::end(kUnits),
                                        [&](const auto& u) { return unit == u.first; });
  check(digits > 0 && digits <= 18 && unit_entry != std::end(kUnits),
        "{}: '{}' is not a size (expected e.g. 2GB, 500MB, 1GiB or a byte count)", what, text);
  const uint64_t number = std::stoull(text.substr(0, digits));
  check(number > 0, "{}: the size must be positive", what);
  check(number <= UINT64_MAX / unit_entry->second, "{}: '{}' is too large", what, text);
  return number * unit_entry->second;
}

}  // namespace forma

#include "forma/model/hf_io.h"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <set>

#include "forma/core/error.h"
#include "forma/core/files.h"
#include "forma/core/log.h"
#include "forma/core/progress.h"
#include "forma/core/system.h"
#include "forma/model/model_stats.h"
#include "forma/model/tensor_io.h"
#include "forma/train/checkpoint_dir.h"

namespace forma {

namespace fs = std::filesystem;

namespace {

// Progress is shown from this size on; smaller models load in well under a second.
constexpr int64_t kProgressFromBytes = 256ll << 20;
// Bytes of a parameter copied at once: bounds the mapped pages resident at any time.
constexpr int64_t kBlockBytes = 32ll << 20;

// The weight files of a folder, open (memory-mapped), and a view of every tensor into them.
struct MappedWeights {
  std::vector<std::unique_ptr<SafetensorsFile>> files;
  std::map<std::string, std::string> file_of;  // HF name -> path
  StateDict views;                              // HF name -> view into its file's map

  // Drops the pages under `block` (a view into one of the maps) from resident memory.
  void release(const torch::Tensor& block) const {
    if (block.numel() == 0) return;
    // Extent of a strided view: from its first element to its last (strides are non-negative).
    int64_t last = 0;
    for (int64_t d = 0; d < block.dim(); ++d) last += (block.size(d) - 1) * block.stride(d);
    const size_t nbytes = static_cast<size_t>(last + 1) * block.element_size();
    for (const auto& file : files) file->release_pages(block.data_ptr(), nbytes);
  }
};

MappedWeights map_weights(const std::string& dir) {
  MappedWeights weights;
  weights.file_of = hf_weight_files(dir);
  std::map<std::string, const SafetensorsFile*> open;
  for (const auto& [name, path] : weights.file_of) {
    const SafetensorsFile*& file = open[path];
    if (!file) {
      weights.files.push_back(std::make_unique<SafetensorsFile>(path));
      file = weights.files.back().get();
    }
    torch::Tensor view = mapped_tensor(*file, name);
    check(view.is_floating_point(), "{}: tensor '{}' has integer dtype {}, expected F32/F16/BF16",
          path, name, dtype_name(file->get(name).dtype));
    weights.views[name] = view;
  }
  return weights;
}

std::string where_is(const std::map<std::string, std::string>& files, const std::string& name,
                     const std::string& fallback) {
  auto it = files.find(name);
  return it != files.end() ? it->second : fallback;
}

// Copies `source` into `param` a block of rows at a time (copy_ converts the dtype and gathers
// non-contiguous views), telling `copied` about each source block.
void copy_in_blocks(torch::Tensor& param, const torch::Tensor& source,
                    const std::function<void(const torch::Tensor&)>& copied,
                    const std::function<void(int64_t bytes)>& advance) {
  if (param.dim() == 0 || param.numel() == 0) {
    param.copy_(source);
    if (copied) copied(source);
    advance(param.numel() * param.element_size());
    return;
  }
  const int64_t row_bytes = param.numel() / param.size(0) * param.element_size();
  const int64_t rows = std::max<int64_t>(1, kBlockBytes / std::max<int64_t>(row_bytes, 1));
  for (int64_t row = 0; row < param.size(0); row += rows) {
    const int64_t n = std::min(rows, param.size(0) - row);
    torch::Tensor block = source.narrow(0, row, n);
    param.narrow(0, row, n).copy_(block);
    if (copied) copied(block);
    advance(n * row_bytes);
  }
}

// Before building anything: could the weights on disk be the model config.json describes, and does
// that model fit in memory? A config.json that does not belong to its weights (1,000,000 layers over
// 2) would otherwise be built, for minutes or until the allocator gives up, before the first tensor
// is compared. The tensor-by-tensor check (names, shapes) follows in load_hf_state_dict.
void check_config_fits_weights(const ModelConfig& config, const StateDict& views, const std::string& dir,
                               torch::ScalarType dtype) {
  int64_t layers_on_disk = 0;
  for (const auto& [name, t] : from_hf_names(views, config)) {
    // forma's names: model.layers.N....
    if (name.rfind("model.layers.", 0) == 0) {
      layers_on_disk = std::max<int64_t>(layers_on_disk, std::atoll(name.c_str() + 13) + 1);
    }
  }
  check(layers_on_disk >= config.num_hidden_layers,
        "{}/config.json: num_hidden_layers is {} but the weights in {} hold {} layers: the config does not belong to "
        "these weights", dir, config.num_hidden_layers, dir, layers_on_disk);
  const int64_t parameters = count_parameters(config).total;
  check_fits_in_memory(static_cast<double>(parameters) * static_cast<double>(c10::elementSize(dtype)),
                       fmt::format("{} ({} parameters in {})", dir, parameters, compute_dtype_name(dtype)));
}

}  // namespace

std::map<std::string, std::string> hf_weight_files(const std::string& dir) {
  const std::string single = dir + "/model.safetensors";
  const std::string index = dir + "/model.safetensors.index.json";
  std::map<std::string, std::string> files;
  if (fs::exists(single)) {
    SafetensorsFile file(single);
    for (const auto& name : file.names()) files[name] = single;
    return files;
  }
  // A training checkpoint of a tensor-parallel run holds its weights in pieces (train/checkpoint.h).
  check(fs::exists(index), "{}: no model.safetensors nor model.safetensors.index.json{}", dir,
        fs::exists(dir + "/metadata.json")
            ? " (a checkpoint written with tensor_parallel > 1: `forma ckpt merge DIR --to HF_DIR` makes a model "
              "folder of it)"
            : "");
  auto json = nlohmann::json::parse(read_file(index), nullptr, /*allow_exceptions=*/false);
  check(!json.is_discarded(), "{}: not valid JSON", index);
  check(json.is_object() && json.contains("weight_map") && json["weight_map"].is_object(),
        "{}: field 'weight_map' missing or not an object", index);
  for (auto it = json["weight_map"].begin(); it != json["weight_map"].end(); ++it) {
    check(it->is_string(), "{}: weight_map entry '{}' is not a file name", index, it.key());
    std::string shard = it->get<std::string>();
    check(shard.find('/') == std::string::npos && shard.find("..") == std::string::npos,
          "{}: weight_map entry '{}' points outside the folder: '{}'", index, it.key(), shard);
    files[it.key()] = dir + "/" + shard;
  }
  return files;
}

void load_hf_state_dict(CausalLM& model, const StateDict& hf_weights, const std::string& where,
                        const std::map<std::string, std::string>& files,
                        const std::function<void(const torch::Tensor& block)>& copied) {
  const ModelConfig& config = model->config();
  StateDict hf = hf_weights;
  // Tied models: HF may or may not store lm_head.weight; it is the embedding either way.
  if (config.tie_word_embeddings) hf.erase("lm_head.weight");
  const StateDict weights = from_hf_names(hf, config);
  auto params = model->named_parameters();
  for (const auto& item : params) {
    check(weights.count(item.key()) > 0, "{}: missing tensor '{}'", where, item.key());
  }
  int64_t total_bytes = 0;
  for (const auto& [name, t] : weights) {
    const auto* param = params.find(name);
    check(param != nullptr, "{}: unexpected tensor '{}' (not a parameter of a {} model)",
          where_is(files, name, where), name, config.model_type);
    check(param->sizes() == t.sizes(), "{}: tensor '{}' has shape {} but the config needs {}",
          where_is(files, name, where), name, fmt::format("{}", fmt::join(t.sizes(), "x")),
          fmt::format("{}", fmt::join(param->sizes(), "x")));
    total_bytes += param->numel() * param->element_size();
  }
  std::unique_ptr<Progress> progress;
  if (total_bytes >= kProgressFromBytes) {
    progress = std::make_unique<Progress>("loading " + where, total_bytes >> 20, "MiB");
  }
  int64_t done_bytes = 0;
  auto advance = [&](int64_t bytes) {
    done_bytes += bytes;
    if (progress) progress->update(done_bytes >> 20);
  };
  torch::NoGradGuard no_grad;
  for (auto& item : params) copy_in_blocks(item.value(), weights.at(item.key()), copied, advance);
  if (progress) progress->finish();
}

CausalLM load_pretrained(const std::string& dir, const LoadOptions& options) {
  check(fs::is_directory(dir), "{}: not a model folder", dir);
  train::verify_if_checkpoint(dir);  // a training checkpoint's files must match its manifest
  ModelConfig config = load_model_config(dir + "/config.json");
  const auto start = std::chrono::steady_clock::now();
  const MappedWeights weights = map_weights(dir);
  check_config_fits_weights(config, weights.views, dir, options.dtype);
  CausalLM model(config, options.dtype);
  const auto built = std::chrono::steady_clock::now();
  load_hf_state_dict(model, weights.views, dir, weights.file_of,
                     [&weights](const torch::Tensor& block) { weights.release(block); });
  const auto copied = std::chrono::steady_clock::now();
  log::debug("loaded {} tensors from {} as {}: model built in {:.2f} s, weights copied in {:.2f} s",
             weights.views.size(), dir, compute_dtype_name(options.dtype),
             std::chrono::duration<double>(built - start).count(),
             std::chrono::duration<double>(copied - built).count());
  if (options.device != torch::Device(torch::kCPU)) model->to(options.device);
  return model;
}

torch::ScalarType parse_compute_dtype(const std::string& text, const ModelConfig& config, const std::string& what) {
  if (text == "fp32" || text == "float32") return torch::kFloat;
  if (text == "bf16" || text == "bfloat16") return torch::kBFloat16;
  check(text == "auto", "{}: unknown dtype '{}' (expected fp32, bf16 or auto)", what, text);
  for (const char* key : {"torch_dtype", "dtype"}) {
    const auto it = config.extra.find(key);
    if (it != config.extra.end() && it->is_string()) {
      return it->get<std::string>() == "bfloat16" ? torch::kBFloat16 : torch::kFloat;
    }
  }
  return torch::kFloat;
}

const char* compute_dtype_name(torch::ScalarType dtype) {
  return dtype == torch::kBFloat16 ? "bf16" : dtype == torch::kFloat ? "fp32" : c10::toString(dtype);
}

std::map<std::string, torch::Tensor> hf_state_dict(CausalLM& model) {
  StateDict forma_names;
  for (const auto& item : model->named_parameters()) {
    // LoRA adapters (peft/lora_linear.h) are not weights of the HF model: peft::save_adapter writes them.
    const std::string& name = item.key();
    const bool lora = name.size() > 14 && (name.rfind(".lora_A.weight") == name.size() - 14 ||
                                           name.rfind(".lora_B.weight") == name.size() - 14);
    if (!lora) forma_names[name] = item.value().detach();
  }
  const ModelConfig& config = model->config();
  return to_hf_names(forma_names, config);
}

void save_pretrained(CausalLM& model, const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  check(!ec, "cannot create {}: {}", dir, ec.message());
  save_tensors(dir + "/model.safetensors", hf_state_dict(model), {{"format", "pt"}});
  write_file_atomic(dir + "/config.json", to_hf_json(model->config()).dump(2) + "\n");
}

}  // namespace forma

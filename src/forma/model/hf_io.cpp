#include "forma/model/hf_io.h"

#include <filesystem>
#include <memory>
#include <set>

#include "forma/core/error.h"
#include "forma/core/files.h"
#include "forma/core/log.h"
#include "forma/model/tensor_io.h"

namespace forma {

namespace fs = std::filesystem;

namespace {

// name -> file holding it, from model.safetensors or the shard index.
std::map<std::string, std::string> weight_files(const std::string& dir) {
  const std::string single = dir + "/model.safetensors";
  const std::string index = dir + "/model.safetensors.index.json";
  std::map<std::string, std::string> files;
  if (fs::exists(single)) {
    SafetensorsFile file(single);
    for (const auto& name : file.names()) files[name] = single;
    return files;
  }
  check(fs::exists(index), "{}: no model.safetensors nor model.safetensors.index.json", dir);
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

// Reads every tensor listed in `files` as fp32 (floating) tensors, opening each shard once.
StateDict read_weights(const std::map<std::string, std::string>& files) {
  std::map<std::string, std::unique_ptr<SafetensorsFile>> open;
  StateDict out;
  for (const auto& [name, path] : files) {
    auto& file = open[path];
    if (!file) file = std::make_unique<SafetensorsFile>(path);
    torch::Tensor t = tensor_from(*file, name, LoadAs::Float32);
    check(t.is_floating_point(), "{}: tensor '{}' has integer dtype {}, expected F32/F16/BF16", path,
          name, dtype_name(file->get(name).dtype));
    out[name] = t;
  }
  return out;
}

std::string where_is(const std::map<std::string, std::string>& files, const std::string& name,
                     const std::string& fallback) {
  auto it = files.find(name);
  return it != files.end() ? it->second : fallback;
}

}  // namespace

void load_hf_state_dict(CausalLM& model, const StateDict& hf_weights, const std::string& where,
                        const std::map<std::string, std::string>& files) {
  const ModelConfig& config = model->config();
  const Architecture& arch = architecture_for(config);
  StateDict hf = hf_weights;
  // Tied models: HF may or may not store lm_head.weight; it is the embedding either way.
  if (config.tie_word_embeddings) hf.erase("lm_head.weight");
  StateDict weights = arch.from_hf(hf, config);
  auto params = model->named_parameters();
  for (const auto& item : params) {
    check(weights.count(item.key()) > 0, "{}: missing tensor '{}'", where, item.key());
  }
  for (const auto& [name, t] : weights) {
    const auto* param = params.find(name);
    check(param != nullptr, "{}: unexpected tensor '{}' (not a parameter of a {} model)",
          where_is(files, name, where), name, config.model_type);
    check(param->sizes() == t.sizes(), "{}: tensor '{}' has shape {} but the config needs {}",
          where_is(files, name, where), name, fmt::format("{}", fmt::join(t.sizes(), "x")),
          fmt::format("{}", fmt::join(param->sizes(), "x")));
  }
  torch::NoGradGuard no_grad;
  for (auto& item : params) item.value().copy_(weights.at(item.key()));
}

CausalLM load_pretrained(const std::string& dir) {
  check(fs::is_directory(dir), "{}: not a model folder", dir);
  ModelConfig config = load_model_config(dir + "/config.json");
  std::map<std::string, std::string> files = weight_files(dir);
  StateDict hf = read_weights(files);
  CausalLM model(config);
  load_hf_state_dict(model, hf, dir, files);
  log::debug("loaded {} tensors from {}", hf.size(), dir);
  return model;
}

std::map<std::string, torch::Tensor> hf_state_dict(CausalLM& model) {
  StateDict forma_names;
  for (const auto& item : model->named_parameters()) forma_names[item.key()] = item.value().detach();
  const ModelConfig& config = model->config();
  return architecture_for(config).to_hf(forma_names, config);
}

void save_pretrained(CausalLM& model, const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  check(!ec, "cannot create {}: {}", dir, ec.message());
  save_tensors(dir + "/model.safetensors", hf_state_dict(model), {{"format", "pt"}});
  write_file_atomic(dir + "/config.json", to_hf_json(model->config()).dump(2) + "\n");
}

}  // namespace forma

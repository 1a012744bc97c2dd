#include "forma/train/checkpoint.h"

#include <nlohmann/json.hpp>

#include <filesystem>

#include "forma/core/error.h"
#include "forma/core/files.h"
#include "forma/core/log.h"
#include "forma/model/hf_io.h"
#include "forma/model/tensor_io.h"
#include "forma/train/checkpoint_dir.h"

namespace forma::train {
namespace fs = std::filesystem;

namespace {

// Files of a model folder that must not be taken from a tokenizer folder (they are the model's).
bool is_model_file(const std::string& name) {
  return name == "config.json" || name == "generation_config.json" || name == "manifest.json" ||
         name == "trainer_state.json" || name.rfind("model", 0) == 0 || name.rfind("optimizer", 0) == 0;
}

void copy_tokenizer(const std::string& tokenizer_path, const std::string& dir) {
  if (tokenizer_path.empty()) return;
  fs::path src(tokenizer_path);
  check(fs::exists(src), "tokenizer.path: {} does not exist", tokenizer_path);
  if (fs::is_regular_file(src)) {
    fs::copy_file(src, fs::path(dir) / src.filename(), fs::copy_options::overwrite_existing);
    return;
  }
  for (auto& entry : fs::directory_iterator(src)) {
    auto name = entry.path().filename().string();
    if (entry.is_regular_file() && !is_model_file(name)) {
      fs::copy_file(entry.path(), fs::path(dir) / name, fs::copy_options::overwrite_existing);
    }
  }
}

void write_generation_config(const ModelConfig& config, const std::string& dir) {
  nlohmann::json j = {{"_from_model_config", true}};
  if (config.bos_token_id) j["bos_token_id"] = *config.bos_token_id;
  if (config.eos_token_id.size() == 1) j["eos_token_id"] = config.eos_token_id[0];
  if (config.eos_token_id.size() > 1) j["eos_token_id"] = config.eos_token_id;
  write_file_atomic((fs::path(dir) / "generation_config.json").string(), j.dump(2) + "\n");
}

}  // namespace

const std::vector<std::string>& required_checkpoint_files() {
  static const std::vector<std::string> files{"config.json", "model.safetensors", "trainer_state.json",
                                              "optimizer.safetensors"};
  return files;
}

std::string save_checkpoint(const std::string& checkpoints_dir, int keep_last, CausalLM& model,
                            const std::map<std::string, torch::Tensor>& optimizer_state, const TrainerState& state,
                            const std::string& tokenizer_path) {
  return commit_checkpoint(checkpoints_dir, state.step, keep_last, [&](const std::string& dir) {
    copy_tokenizer(tokenizer_path, dir);
    save_pretrained(model, dir);
    write_generation_config(model->config(), dir);
    save_tensors((fs::path(dir) / "optimizer.safetensors").string(), optimizer_state,
                 {{"format", "pt"}, {"step", std::to_string(state.step)}});
    write_file_atomic((fs::path(dir) / "trainer_state.json").string(), trainer_state_to_json(state));
  });
}

TrainerState load_checkpoint(const std::string& dir, CausalLM& model, Optimizer& optimizer) {
  verify_checkpoint(dir, required_checkpoint_files());
  auto weights_path = (fs::path(dir) / "model.safetensors").string();
  {
    torch::NoGradGuard no_grad;
    load_hf_state_dict(model, load_tensors(weights_path, LoadAs::Float32), weights_path);
  }
  auto optimizer_path = (fs::path(dir) / "optimizer.safetensors").string();
  optimizer.load_state_dict(load_tensors(optimizer_path), optimizer_path);
  auto state_path = (fs::path(dir) / "trainer_state.json").string();
  return trainer_state_from_json(read_file(state_path), state_path);
}

}  // namespace forma::train

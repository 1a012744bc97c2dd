// `forma lora merge --model BASE --adapter DIR --to OUT`: a LoRA adapter merged into its base model
// (W + scaling * B A for every adapted layer, modules_to_save taken from the adapter), written as a
// plain Hugging Face model folder that any tool loads without PEFT.
#include <filesystem>
#include <memory>

#include "forma/cli/command.h"
#include "forma/cli/model_inputs.h"
#include "forma/core/error.h"
#include "forma/core/log.h"
#include "forma/model/hf_io.h"
#include "forma/peft/lora_model.h"
#include "forma/train/checkpoint.h"

// A named namespace (not an anonymous one): unity builds compile the commands in one unit.
namespace forma::cli::lora_command {

namespace fs = std::filesystem;

struct MergeArgs {
  std::string model, adapter, to;
  std::string dtype = "auto";
};

// Files of the base folder that the merged folder takes as they are (tokenizer, chat template,
// generation config, README...): everything but weights, the model config and training state.
bool copied_from_base(const std::string& name) {
  const auto ext = fs::path(name).extension().string();
  return name != "config.json" && name != "manifest.json" && name != "trainer_state.json" &&
         name != "metadata.json" && name.rfind("adapter_", 0) != 0 && name.rfind("model", 0) != 0 &&
         name.rfind("optimizer", 0) != 0 && ext != ".safetensors" && ext != ".bin" && ext != ".pt" && ext != ".gguf";
}

void run_merge(const MergeArgs& a) {
  check(fs::is_directory(a.model), "--model: {} is not a folder", a.model);
  check(!fs::exists(a.to) || (fs::is_directory(a.to) && fs::is_empty(a.to)),
        "--to: {} exists and is not an empty folder", a.to);
  const ModelConfig config = load_model_config(a.model);
  CausalLM model = load_pretrained(a.model, LoadOptions{parse_compute_dtype(a.dtype, config, "--dtype")});
  apply_adapter(model, a.adapter);
  peft::merge_lora(model);
  // Written into a temporary sibling renamed at the end: a failure leaves no half-written --to.
  const fs::path to = fs::absolute(a.to).lexically_normal();
  const fs::path tmp = to.parent_path() / ("." + to.filename().string() + ".tmp-merge");
  std::error_code ec;
  fs::remove_all(tmp, ec);
  try {
    save_pretrained(model, tmp.string());
    bool has_generation_config = false;
    for (const auto& entry : fs::directory_iterator(a.model)) {
      const auto name = entry.path().filename().string();
      if (!entry.is_regular_file() || !copied_from_base(name)) continue;
      fs::copy_file(entry.path(), tmp / name, fs::copy_options::overwrite_existing);
      has_generation_config = has_generation_config || name == "generation_config.json";
    }
    if (!has_generation_config) train::write_generation_config(model->config(), tmp.string());
    if (fs::exists(to)) fs::remove(to);  // empty, checked above
    fs::rename(tmp, to);
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  log::info("merged {} into {}: wrote {} ({} weights)", a.adapter, a.model, a.to, compute_dtype_name(model->dtype()));
}

CommandRegistration reg(36, [](CLI::App& app) {
  auto* group = subcommand_group(app, "lora", "LoRA adapters (PEFT's format)");
  auto* cmd = group->add_subcommand("merge", "merge a LoRA adapter into its base model: a plain Hugging Face folder");
  auto args = std::make_shared<MergeArgs>();
  cmd->add_option("--model", args->model, "the base model's Hugging Face folder")->required();
  cmd->add_option("--adapter", args->adapter, "the adapter folder (adapter_config.json + adapter_model.safetensors)")
      ->required();
  cmd->add_option("--to", args->to, "output folder (must not exist, or be empty)")->required();
  cmd->add_option("--dtype", args->dtype,
                  "dtype of the merged weights: auto (default: the base's bf16, else fp32), fp32 or bf16")
      ->capture_default_str();
  cmd->callback([args] { run_merge(*args); });
});

}  // namespace forma::cli::lora_command

#include "forma/cli/model_inputs.h"

#include <sched.h>

#include <algorithm>
#include <climits>
#include <filesystem>
#include <sstream>

#include "forma/core/error.h"
#include "forma/core/log.h"
#include "forma/core/system.h"
#include "forma/model/config.h"
#include "forma/parallel/dist_env.h"
#include "forma/peft/lora_model.h"

namespace forma::cli {

namespace fs = std::filesystem;

CLI::Option* add_dtype_option(CLI::App* command, std::string* dtype) {
  return command->add_option("--dtype", *dtype,
                             "dtype the model is loaded and computes in: fp32 (default), bf16, or auto (config.json's "
                             "torch_dtype: bf16 for bfloat16 models, else fp32). bf16 halves the memory; its speed "
                             "depends on the CPU (LibTorch's fast bf16 kernels need AVX-512)");
}

CLI::Option* add_device_option(CLI::App* command, std::string* device) {
  return command->add_option("--device", *device,
                             "where the model computes: cpu, cuda, cuda:N, or auto (default: CUDA when a GPU is "
                             "visible, else the CPU; under forma launch the GPU of the local rank)");
}

torch::Device device_from_flag(const std::string& text) {
  const auto env = parallel::detect_dist_env();
  return resolve_device(text, "--device", env.world_size > 1 ? env.local_rank : -1);
}

CLI::Option* add_adapter_option(CLI::App* command, std::string* adapter) {
  return command->add_option("--adapter", *adapter,
                             "a LoRA adapter folder in PEFT's format (adapter_config.json + adapter_model.safetensors, "
                             "as PEFT's save_pretrained and forma train with a lora section write) put on the model");
}

void apply_adapter(CausalLM& model, const std::string& adapter) {
  if (adapter.empty()) return;
  const auto config = peft::load_adapter(model, adapter);
  log::info("adapter {}: LoRA r={}, alpha={:g}{}", adapter, config.r, config.alpha, config.use_rslora ? ", rslora" : "");
}

CLI::Option* add_threads_option(CLI::App* command, int* threads) {
  return command->add_option("--threads", *threads,
                             "compute threads (default 0: the cores this process may run on, divided among the "
                             "workers forma launch started on this node)");
}

int default_threads() {
  return std::max(1, available_cores() / std::max(1, parallel::detect_dist_env().local_world_size));
}

void apply_threads(int threads) {
  check_thread_count(threads, "--threads");
  torch::set_num_threads(threads > 0 ? threads : default_threads());
}

bool has_tokenizer_files(const std::string& dir) {
  for (const char* name : {"tokenizer.json", "tokenizer.model", "encoder.json"}) {
    if (fs::exists(fs::path(dir) / name)) return true;
  }
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() == ".tiktoken") return true;
  }
  return false;
}

std::unique_ptr<tok::Tokenizer> load_folder_tokenizer(const std::string& dir) {
  if (!has_tokenizer_files(dir)) return nullptr;
  auto tokenizer = tok::load_tokenizer(dir);
  const ModelConfig config = load_model_config(dir);
  check(tokenizer->vocab_size() <= config.vocab_size,
        "{}: the tokenizer has {} ids but the model's vocabulary has {} (vocab_size in {}): the tokenizer does not "
        "belong to this model", dir, tokenizer->vocab_size(), config.vocab_size, config.source);
  return tokenizer;
}

std::vector<int32_t> parse_token_ids(const std::string& text, const std::string& flag) {
  std::vector<int32_t> ids;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) {
    size_t used = 0;
    long long value = -1;
    try {
      value = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    while (used < item.size() && item[used] == ' ') ++used;
    check(used == item.size() && !item.empty() && value >= 0 && value <= INT32_MAX,
          "{}: \"{}\" is not a token id (expected e.g. 1,2,3)", flag, item);
    ids.push_back(static_cast<int32_t>(value));
  }
  check(!ids.empty(), "{}: no ids given", flag);
  return ids;
}

std::vector<int32_t> prompt_from_flags(const std::string& prompt, const std::string& prompt_ids,
                                       const tok::Tokenizer* tokenizer, const std::string& model_dir) {
  check(prompt.empty() != prompt_ids.empty(), "give exactly one of --prompt and --prompt-ids");
  if (!prompt_ids.empty()) return parse_token_ids(prompt_ids);
  check(tokenizer != nullptr,
        "--prompt: {} has no tokenizer (tokenizer.json, tokenizer.model, encoder.json + vocab.bpe or "
        "*.tiktoken); use --prompt-ids",
        model_dir);
  // HF's tokenizer(prompt) adds the special tokens of its post-processor (Llama's BOS) by default.
  return tokenizer->encode(prompt, true);
}

}  // namespace forma::cli

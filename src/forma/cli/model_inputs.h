// What the inference commands (generate, chat, logits, eval, bench generate) share: the --dtype
// option, the tokenizer of a model folder when it has one, and token ids given on the command line.
#pragma once
#include <CLI/CLI.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "forma/model/causal_lm.h"
#include "forma/model/device.h"
#include "forma/tokenizer/tokenizer.h"

namespace forma::cli {

// Adds --dtype fp32|bf16|auto (default fp32) writing into `dtype`: the dtype the model is loaded
// and run in, resolved by parse_compute_dtype (model/hf_io.h) with "--dtype" named in errors.
CLI::Option* add_dtype_option(CLI::App* command, std::string* dtype);

// Adds --device cpu|cuda|cuda:N|auto (default auto: CUDA when a GPU is visible) writing into `device`.
CLI::Option* add_device_option(CLI::App* command, std::string* device);
// The device --device names; under a launcher "cuda" and "auto" take the local rank's GPU.
torch::Device device_from_flag(const std::string& text);

// Adds --adapter DIR: a PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors)
// put on the model after it is loaded.
CLI::Option* add_adapter_option(CLI::App* command, std::string* adapter);
// Loads the adapter --adapter names into `model` (nothing when `adapter` is empty); errors name the file.
void apply_adapter(CausalLM& model, const std::string& adapter);

// Adds --threads N: LibTorch's intra-op threads (default 0: the cores this process may run on, from
// its affinity mask, divided among the workers a launcher started on this node).
CLI::Option* add_threads_option(CLI::App* command, int* threads);
// Sets the threads --threads asks for (0: the default above); errors name the flag.
void apply_threads(int threads);
// The default of --threads.
int default_threads();

// Whether `dir` holds a tokenizer load_tokenizer can read (tokenizer.json, tokenizer.model,
// encoder.json or *.tiktoken).
bool has_tokenizer_files(const std::string& dir);

// The folder's tokenizer (tokenizer.json, tokenizer.model, encoder.json + vocab.bpe or *.tiktoken),
// or null when it has none of those files. A tokenizer with more ids than the model's vocabulary
// (config.json's vocab_size) is an error: its extra ids have no embedding.
std::unique_ptr<tok::Tokenizer> load_folder_tokenizer(const std::string& dir);

// "1, 2,3" -> {1, 2, 3}; errors name `flag` and the offending item.
std::vector<int32_t> parse_token_ids(const std::string& text, const std::string& flag = "--prompt-ids");

// The prompt of --prompt TEXT (encoded with the special tokens, as HF's tokenizer(prompt) adds
// Llama's BOS) or --prompt-ids; exactly one must be given. Errors name the flag.
std::vector<int32_t> prompt_from_flags(const std::string& prompt, const std::string& prompt_ids,
                                       const tok::Tokenizer* tokenizer, const std::string& model_dir);

}  // namespace forma::cli

// Hugging Face model folders: config.json plus model.safetensors (or shards listed by
// model.safetensors.index.json). Loading checks every tensor: missing, unexpected or wrongly
// shaped ones are errors naming the tensor and the file.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <map>
#include <string>

#include "forma/model/causal_lm.h"

namespace forma {

struct LoadOptions {
  // The dtype the model is built in and computes in: torch::kFloat or torch::kBFloat16 (see
  // CausalLMImpl). F32/F16/BF16 weights are converted to it as they are copied in, block by block:
  // a BF16 folder loaded in bf16 is copied as it is, never through an fp32 copy.
  torch::ScalarType dtype = torch::kFloat;
  // Where the model computes: weights are loaded on the CPU (memory-mapped, block by block) and the
  // model is then moved there.
  torch::Device device = torch::kCPU;
};

// Reads `dir`. Tied models may omit lm_head.weight (HF does). The weight files are memory-mapped
// and copied into the model's parameters a block at a time, each block's pages released once
// copied, so that peak memory is the model (in options.dtype) plus a few blocks, not the model
// twice. Shows progress for large models.
CausalLM load_pretrained(const std::string& dir, const LoadOptions& options = {});

// The compute dtype a user names: "fp32"/"float32", "bf16"/"bfloat16", or "auto": the dtype
// config.json records (torch_dtype, or the newer "dtype") when it is bfloat16, else fp32 (float16
// models compute in fp32: LibTorch has no fp16 matmul on CPU, and fp16 -> fp32 is exact).
// Errors name `what` (e.g. the flag).
torch::ScalarType parse_compute_dtype(const std::string& text, const ModelConfig& config, const std::string& what);
// "fp32" or "bf16", as --dtype spells them.
const char* compute_dtype_name(torch::ScalarType dtype);

// Copies HF-named `weights` (names are HF's; from_hf is applied here) into `model`, converting
// dtypes. `where` names the source in errors; `files` optionally maps HF names to the file holding
// them. `copied`, when given, is called with each block of a source tensor once it is copied (the
// loader releases memory-mapped pages there).
void load_hf_state_dict(CausalLM& model, const StateDict& hf_weights, const std::string& where,
                        const std::map<std::string, std::string>& files = {},
                        const std::function<void(const torch::Tensor& block)>& copied = {});

// name -> path of the file holding it: every tensor of `dir`/model.safetensors, else the
// weight_map of `dir`/model.safetensors.index.json (shard names checked to stay inside `dir`).
std::map<std::string, std::string> hf_weight_files(const std::string& dir);

// Writes config.json and model.safetensors with HF names into `dir` (created if needed), each file
// atomically; a tied lm_head is omitted as HF does.
void save_pretrained(CausalLM& model, const std::string& dir);

// The model's parameters under HF names and layouts (gpt2: transformer.*, Conv1D transposed,
// c_attn fused), detached.
std::map<std::string, torch::Tensor> hf_state_dict(CausalLM& model);

}  // namespace forma

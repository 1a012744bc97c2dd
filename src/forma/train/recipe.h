// A training recipe: one YAML file with one section per component, each a plain struct with
// documented defaults that validates itself (docs/training.md lists every key). `--set a.b=c`
// overrides are applied to the YAML tree before the structs are read, so an unknown or bad key is
// reported the same way wherever it came from: with the file and line (yaml-cpp's Mark) or the
// --set argument that introduced it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "forma/peft/lora_config.h"

namespace forma::train {

// What to train. `path` is a preset name (configs/models), a config.json (random init) or a Hugging
// Face folder with weights to start from.
struct ModelSection {
  std::string path;  // required
};

struct TokenizerSection {
  std::string path;  // optional: its files are copied into every checkpoint
};

// Mirrors data::DataSpec; seq_len comes from the training section.
struct DataSection {
  std::vector<std::string> prefixes;  // indexed datasets (PREFIX.bin/.idx); required by `forma train`
  std::vector<double> weights;        // default: equal weights
  double valid_fraction = 0.05;       // share of sequences held out for validation
  uint64_t seed = 1234;               // split and blending seed
  // SFT datasets (`forma data prepare --sft`, found by their PREFIX.mask files): several samples
  // per row with per-sample positions and attention (true), or one sample per row (false).
  bool packing = true;
};

struct TrainingConfig {
  int64_t micro_batch_size = 8;
  int64_t grad_accum_steps = 1;
  int64_t seq_len = 256;
  int64_t max_steps = 1000;
  uint64_t seed = 1234;  // model init, data order and any sampling
  // fp32, or mixed precision with fp32 master weights and AdamW moments: bf16 (autocast) or fp16
  // (autocast and dynamic loss scaling; CUDA only). See model/autocast.h.
  std::string precision = "fp32";
  std::string device = "auto";  // cpu | cuda | cuda:N | auto (CUDA when a GPU is visible; launched: the local rank's)
  bool activation_checkpointing = false;
  int threads = 0;  // intra-op threads; 0 keeps LibTorch's default (one per core)
};

struct OptimizerConfig {
  double lr = 3e-4;  // peak learning rate
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;  // applied to matrices only (dim >= 2), as nanoGPT and Megatron do
  double grad_clip = 1.0;     // max global L2 norm; 0 disables clipping
};

struct ScheduleConfig {
  std::string type = "cosine";  // constant | linear | cosine | wsd
  int64_t warmup_steps = 0;
  double min_lr_ratio = 0.1;     // final lr = min_lr_ratio * lr (linear, cosine, wsd)
  double decay_fraction = 0.2;   // wsd: share of max_steps spent decaying at the end
};

struct LoggingConfig {
  int64_t log_interval = 10;   // steps between log lines / metrics.jsonl records
  int64_t eval_interval = 100; // steps between validation passes; 0 disables
  int64_t eval_steps = 10;     // micro-batches per validation pass
};

struct CheckpointConfig {
  int64_t interval = 500;  // steps between checkpoints (one is always written at the end); 0: end only
  int keep_last = 3;       // older step-NNNNNNN folders are deleted
};

// How the world's processes are laid out (docs/training.md, "parallel"). The sizes of the mesh
// dimensions must multiply to WORLD_SIZE; that is checked when training starts (parallel/layout.h),
// since the world size comes from the launcher, not the recipe.
struct ParallelConfig {
  int data_parallel = 0;          // 0 (auto): WORLD_SIZE divided by the other dimensions
  int tensor_parallel = 1;        // Megatron's tensor parallelism: heads, MLP and vocabulary split
  bool sequence_parallel = false; // Megatron's: splits the tensor-parallel regions along the sequence
  int pipeline_parallel = 1;      // must be 1 for now
  int context_parallel = 1;       // must be 1 for now
  int expert_parallel = 1;        // must be 1 for now
  int zero_stage = 0;             // 0: AdamW state replicated; 1: sharded across data-parallel ranks
  double bucket_mb = 25;          // gradient all-reduce / reduce-scatter bucket size, MB
  double timeout_minutes = 10;    // rendezvous and every collective fail after this long (no hang)
};

struct Recipe {
  ModelSection model;
  TokenizerSection tokenizer;
  DataSection data;
  TrainingConfig training;
  OptimizerConfig optimizer;
  ScheduleConfig schedule;
  LoggingConfig logging;
  CheckpointConfig checkpoint;
  ParallelConfig parallel;
  peft::LoraConfig lora;  // the `lora` section (docs/finetuning.md); lora.enabled when present
  std::string output_dir = "runs/train";
  std::string source;    // the recipe file, for messages
  std::string snapshot;  // the effective YAML (after --set), stored in every checkpoint
};

// Reads `path`, applies `overrides` ("section.key=value", value parsed as YAML), validates every
// section. Throws forma::Error naming the file and line (or the --set argument) and the key.
Recipe load_recipe(const std::string& path, const std::vector<std::string>& overrides = {});

// Parses a recipe from YAML text (`source_name` is used in messages); same rules as load_recipe.
Recipe parse_recipe(const std::string& yaml_text, const std::string& source_name,
                    const std::vector<std::string>& overrides = {});

}  // namespace forma::train

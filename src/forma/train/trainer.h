// Training: gradient accumulation, AdamW with a warm-up schedule, clipping, periodic evaluation,
// metrics (metrics.jsonl, loss.svg, a progress bar and log lines with tokens/s and MFU),
// checkpoints, exact resume, and a clean stop on SIGINT/SIGTERM. In one process, or as one rank of
// a parallel run when a launcher set WORLD_SIZE > 1: each data-parallel rank (parallel/data_parallel.h)
// runs its share of every step's micro-batches; the tensor-parallel ranks of a data-parallel rank
// (parallel/tensor_parallel_model.h) run the same micro-batches, each with its pieces of the model;
// rank 0 alone writes logs and metrics.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <optional>
#include <string>

#include "forma/model/autocast.h"
#include "forma/model/causal_lm.h"
#include "forma/parallel/data_parallel.h"
#include "forma/parallel/tensor_parallel_model.h"
#include "forma/train/batches.h"
#include "forma/train/loss_scaler.h"
#include "forma/train/lr_schedule.h"
#include "forma/train/metrics_log.h"
#include "forma/train/optimizer.h"
#include "forma/train/recipe.h"
#include "forma/train/trainer_state.h"

namespace forma::train {

struct TrainerOptions {
  bool random_data = false;   // benchmarks: random tokens instead of data.prefixes, no validation
  bool write_outputs = true;  // metrics.jsonl, loss.svg, checkpoints
  int64_t stop_after_step = -1;  // > 0: stop (with a checkpoint) after this step, as on SIGTERM
};

struct StepResult {
  double loss = 0;       // mean over the global batch's micro-batches (cross entropy + auxiliary loss)
  bool skipped = false;  // fp16: the gradients overflowed, the update was skipped and the loss scale halved
  double grad_norm = 0;  // of the global gradient, before clipping
  double lr = 0;
  double seconds = 0;    // wall time of the step
};

enum class RunEnd { finished, stopped };

class Trainer {
 public:
  Trainer(Recipe recipe, TrainerOptions options = {});

  // Continues from `checkpoint` ("" = OUTPUT/checkpoints/latest); see find_resumable_checkpoint.
  void resume(const std::string& checkpoint);

  // Trains to training.max_steps, or until SIGINT/SIGTERM (a checkpoint is saved either way, after
  // the step in flight). A signal that came before the first step (while the model and data
  // loaded) stops it before training, with nothing to save: RunEnd::stopped, state().step unchanged.
  RunEnd run();

  StepResult step();   // one optimizer step (grad_accum_steps micro-batches)
  double evaluate();   // mean validation loss over logging.eval_steps micro-batches (shared among ranks)

  const TrainerState& state() const { return state_; }
  CausalLM& model() { return model_; }
  double flops_per_token() const { return flops_per_token_; }
  int64_t tokens_per_step() const;
  std::string checkpoints_dir() const;
  const parallel::DataParallel& data_parallel() const { return dp_; }
  const torch::Device& device() const { return device_; }
  // The matmul peak (GFLOP/s) of this run's compute dtype on its device: MFU's denominator.
  double matmul_peak() const;

 private:
  void setup_parallel();
  // Refuses sizes that cannot work before anything is built: seq_len beyond the model's positions, a
  // model and batch that clearly do not fit in memory.
  void check_sizes(const ModelConfig& config) const;
  void build_model();
  void apply_lora();  // recipe's lora section: adapters on, base frozen (peft/lora_model.h)
  double lora_flops_correction() const;  // FLOPs per token LoRA does not spend (frozen weights) or adds
  void open_data();
  void open_sft_data();  // data.prefixes are SFT datasets (train/sft_batches.h)
  torch::Tensor batch_logits(const Batch& batch);  // packed rows through forward_packed
  void save();
  void log_step(const StepResult& result, double interval_seconds, int64_t interval_tokens);
  // The mean next-token cross entropy of a micro-batch (vocab-parallel under tensor parallelism).
  torch::Tensor language_model_loss(const torch::Tensor& logits, const torch::Tensor& targets) const;

  bool writes_outputs() const { return options_.write_outputs && dp_.is_main(); }

  Recipe recipe_;
  TrainerOptions options_;
  std::shared_ptr<parallel::DeviceMesh> mesh_;    // null in one process
  parallel::DataParallel dp_;                     // one process unless WORLD_SIZE > 1
  std::optional<parallel::TensorParallelPlan> tp_;  // set when tensor_parallel > 1
  torch::Device device_ = torch::kCPU;  // training.device, resolved
  AutocastState autocast_;              // training.precision bf16/fp16: on for forward and loss
  LossScaler loss_scaler_;              // fp16 only
  std::vector<NamedParameter> trainable_;  // what the optimizer updates (the loss scaler unscales them)
  CausalLM model_{nullptr};
  std::unique_ptr<Optimizer> optimizer_;
  std::unique_ptr<LrSchedule> schedule_;
  std::unique_ptr<SampleSource> train_data_, valid_data_;
  std::unique_ptr<MetricsLog> metrics_;
  TrainerState state_;
  double flops_per_token_ = 0;
  int64_t last_saved_step_ = -1;
};

}  // namespace forma::train

#include "forma/train/trainer.h"

#include <chrono>
#include <filesystem>
#include <limits>
#include <optional>

#include "forma/core/error.h"
#include "forma/core/log.h"
#include "forma/core/progress.h"
#include "forma/core/system.h"
#include "forma/model/device.h"
#include "forma/model/hf_io.h"
#include "forma/model/model_stats.h"
#include "forma/parallel/layout.h"
#include "forma/parallel/tensor_parallel_model.h"
#include "forma/peft/lora_model.h"
#include "forma/train/checkpoint.h"
#include "forma/train/checkpoint_dir.h"
#include "forma/data/sft_dataset.h"
#include "forma/train/matmul_peak.h"
#include "forma/train/sft_batches.h"
#include "forma/train/stop_signal.h"

namespace forma::train {
namespace fs = std::filesystem;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Next-token cross entropy. The data already pairs inputs [B,T] with targets [B,T] shifted by one
// (each sample has T+1 ids), so this is causal_lm_loss's math without its internal shift, which
// would drop the last target of every sample.
// In fp32 whatever the logits were computed in (mixed precision keeps losses in fp32, as autocast does).
torch::Tensor next_token_loss(const torch::Tensor& logits, const torch::Tensor& targets) {
  const int64_t vocab = logits.size(2);
  return torch::nn::functional::cross_entropy(logits.reshape({-1, vocab}).to(torch::kFloat), targets.reshape({-1}));
}

bool is_hf_folder(const std::string& path) {
  return fs::is_directory(path) && (fs::exists(fs::path(path) / "model.safetensors") ||
                                    fs::exists(fs::path(path) / "model.safetensors.index.json"));
}

}  // namespace

Trainer::Trainer(Recipe recipe, TrainerOptions options) : recipe_(std::move(recipe)), options_(options) {
  if (recipe_.training.threads > 0) torch::set_num_threads(recipe_.training.threads);
  setup_parallel();
  build_model();
  open_data();
  const auto& o = recipe_.optimizer;
  auto params = decay_groups(*model_);
  if (tp_) {
    for (auto& p : params) p.norm_share = 1.0 / static_cast<double>(tp_->shards.at(p.name).copies);
  }
  trainable_ = params;
  dp_.broadcast_parameters(params);
  optimizer_ = dp_.make_optimizer(std::move(params), AdamWOptions{o.lr, o.beta1, o.beta2, o.eps, o.weight_decay},
                                  recipe_.parallel.zero_stage, recipe_.parallel.bucket_mb);
  schedule_ = std::make_unique<LrSchedule>(recipe_.schedule, o.lr, recipe_.training.max_steps);
  flops_per_token_ = training_flops_per_token(model_->config(), recipe_.training.seq_len);
  if (recipe_.lora.enabled) flops_per_token_ += lora_flops_correction();
  state_.schedule = recipe_.schedule.type;
  state_.recipe_snapshot = recipe_.snapshot;
}

void Trainer::setup_parallel() {
  auto env = parallel::detect_dist_env();
  auto shape = parallel::plan_mesh_shape(recipe_, env);  // checked in one process too
  // Rank 0 speaks for the run; the others only report problems.
  if (env.rank != 0) spdlog::set_level(spdlog::level::warn);
  const auto& t = recipe_.training;
  device_ = resolve_device(t.device, recipe_.source + ": training.device", env.world_size > 1 ? env.local_rank : -1);
  make_current(device_);
  check(t.precision != "fp16" || device_.is_cuda(),
        "{}: training.precision: fp16 needs a CUDA device (training.device is {}); use bf16 on the CPU, which has "
        "fp32's range and needs no loss scaling", recipe_.source, device_.str());
  if (t.precision != "fp32") {
    autocast_ = {true, device_.type(), t.precision == "fp16" ? torch::kHalf : torch::kBFloat16};
  }
  if (t.precision == "fp16") loss_scaler_ = LossScaler(65536.0, 2000);  // GradScaler's defaults
  log::info("training on {} in {}{}", device_.str(), t.precision,
            t.precision == "fp32" ? "" : " (autocast; fp32 master weights and optimizer moments)");
  if (env.world_size == 1) return;
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(recipe_.parallel.timeout_minutes * 60e3));
  mesh_ = std::make_shared<parallel::DeviceMesh>(env, shape, timeout, device_);
  dp_ = parallel::DataParallel(mesh_);
  log::info("{} processes ({}): data_parallel={} x tensor_parallel={}{}, zero_stage={}, {} of the {} micro-batches "
            "of a step per data-parallel rank", env.world_size, env.source, shape.dp, shape.tp,
            recipe_.parallel.sequence_parallel ? " with sequence parallel" : "", recipe_.parallel.zero_stage,
            recipe_.training.grad_accum_steps / shape.dp, recipe_.training.grad_accum_steps);
}

void Trainer::check_sizes(const ModelConfig& config) const {
  const auto& t = recipe_.training;
  check(t.seq_len <= config.max_position_embeddings,
        "{}: training.seq_len: {} exceeds the model's max_position_embeddings ({}, in {})", recipe_.source,
        t.seq_len, config.max_position_embeddings, config.source);
  if (!device_.is_cpu()) return;  // a GPU's memory is LibTorch's to report
  // A lower bound on what one process needs, so that only what clearly cannot fit is refused: the
  // weights, gradients and AdamW moments (split by tensor parallelism), the logits of a micro-batch
  // with their softmax and gradient (fp32), and a few fp32 activations per layer and token.
  const double tp = mesh_ ? mesh_->size(parallel::Dim::tp) : 1;
  const double tokens = static_cast<double>(t.micro_batch_size) * static_cast<double>(t.seq_len);
  const double state = training_memory(config, t.precision != "fp32").total() / tp;
  const double logits = 12.0 * tokens * static_cast<double>(config.vocab_size) / tp;
  const double layers = 16.0 * tokens * static_cast<double>(config.hidden_size * config.num_hidden_layers);
  check_fits_in_memory(state + logits + layers,
                       fmt::format("{}: training this model (training.micro_batch_size {} x seq_len {})",
                                   recipe_.source, t.micro_batch_size, t.seq_len));
}

void Trainer::build_model() {
  // One seed fixes the run: the default generator (used by any sampling) and the weight init.
  torch::manual_seed(recipe_.training.seed);
  const auto& path = recipe_.model.path;
  const ModelConfig config = load_model_config(path);  // read once: model.path may be a pipe
  check_sizes(config);
  // A LoRA run may hold its frozen base in bf16 (lora.base_dtype); the adapters stay fp32.
  const auto dtype = recipe_.lora.enabled && recipe_.lora.base_dtype == "bf16" ? torch::kBFloat16 : torch::kFloat;
  if (is_hf_folder(path)) {
    log::info("starting from the weights in {}", path);
    model_ = load_pretrained(path, LoadOptions{dtype});
  } else {
    model_ = CausalLM(config, dtype);
    model_->init_weights(recipe_.training.seed);
  }
  if (recipe_.lora.enabled) apply_lora();  // on the CPU too: the same adapter init on any device
  // Built (or loaded) on the CPU with the seed's values, then moved: the same weights on any device.
  if (device_ != torch::Device(torch::kCPU)) model_->to(device_);
  model_->set_gradient_checkpointing(recipe_.training.activation_checkpointing);
  model_->train();
  int64_t params = 0;
  for (auto& p : model_->parameters()) params += p.numel();
  int64_t trainable = 0;
  for (auto& p : model_->parameters()) trainable += p.requires_grad() ? p.numel() : 0;
  log::info("model {} ({}): {:.2f} M parameters: {} trainable, {} frozen", path, model_->config().model_type,
            params / 1e6, trainable, params - trainable);
  if (mesh_ && mesh_->size(parallel::Dim::tp) > 1) {
    // Every rank built the same whole model (same seed or weights); each now keeps its pieces.
    const int tp = mesh_->size(parallel::Dim::tp);
    check(!recipe_.parallel.sequence_parallel || recipe_.training.seq_len % tp == 0,
          "{}: training.seq_len={} must be divisible by parallel.tensor_parallel={} with sequence_parallel",
          recipe_.source, recipe_.training.seq_len, tp);
    tp_ = parallel::parallelize_tensor(model_, mesh_->group(parallel::Dim::tp),
                                       {recipe_.parallel.sequence_parallel});
  }
}

void Trainer::apply_lora() {
  // Recomputation in backward would draw other dropout masks than the forward did (recompute.cpp
  // does not replay the generator), so the gradients would not be the loss's.
  check(recipe_.lora.dropout == 0 || !recipe_.training.activation_checkpointing,
        "{}: lora.dropout > 0 with training.activation_checkpointing is not supported (the recomputed forward "
        "would draw other dropout masks); set one of them off", recipe_.source);
  recipe_.lora.base_model = recipe_.model.path;
  const int64_t layers = peft::apply_lora(model_, recipe_.lora, recipe_.source + ": lora");
  const auto counts = peft::parameter_counts(model_);
  const double total = static_cast<double>(counts.trainable + counts.frozen);
  // AdamW keeps two fp32 moments per trainable parameter (and the gradients one more copy).
  log::info("LoRA: {} layers adapted (r={}, alpha={:g}{}): {} trainable parameters ({:.3f}%), {} frozen; "
            "AdamW state {:.2f} MiB, gradients {:.2f} MiB", layers, recipe_.lora.r, recipe_.lora.alpha,
            recipe_.lora.use_rslora ? ", rslora" : "", counts.trainable, 100.0 * counts.trainable / total,
            counts.frozen, 8.0 * counts.trainable / (1 << 20), 4.0 * counts.trainable / (1 << 20));
}

double Trainer::lora_flops_correction() const {
  // A frozen weight gets no weight gradient: it costs 4 FLOPs per parameter and token (the forward
  // and the input's gradient), not the 6 of training_flops_per_token's 6N. LoRA freezes the whole
  // base but for modules_to_save (of which only lm_head is in N: the embeddings are lookups), and
  // adds its adapters at 6. Without this, LoRA's MFU counted weight gradients it never computes
  // (GPT-2 124M showed 108%).
  int64_t adapters = 0, trained_products = 0;
  for (const auto& p : trainable_) {
    if (p.name.find("lora_") != std::string::npos) {
      adapters += p.tensor.numel();
    } else if (p.name.rfind("lm_head.", 0) == 0) {
      trained_products += p.tensor.numel();
    }
  }
  const double frozen = static_cast<double>(count_parameters(model_->config()).matmul_active - trained_products);
  return -2.0 * frozen + 6.0 * static_cast<double>(adapters);
}

void Trainer::open_data() {
  const auto& t = recipe_.training;
  int64_t vocab = model_->config().vocab_size;
  if (options_.random_data) {
    train_data_ = random_samples(vocab, t.seq_len, t.seed);
    return;
  }
  check(!recipe_.data.prefixes.empty(), "{}: data.prefixes: required (the datasets to train on)", recipe_.source);
  if (data::is_sft_dataset(recipe_.data.prefixes.front())) return open_sft_data();
  data::DataSpec spec{recipe_.data.prefixes, recipe_.data.weights, static_cast<int>(t.seq_len),
                      recipe_.data.valid_fraction, recipe_.data.seed, vocab};
  train_data_ = dataset_samples(data::open_sequences(spec, data::Split::train));
  if (recipe_.data.valid_fraction > 0 && recipe_.logging.eval_interval > 0) {
    valid_data_ = dataset_samples(data::open_sequences(spec, data::Split::valid));
  }
  // Reading the first sample now stops a dataset made with another tokenizer before any step; every
  // later sample is checked as it is read (spec.vocab_size).
  std::vector<int32_t> sample(static_cast<size_t>(t.seq_len + 1));
  train_data_->get(0, sample.data());
  log::info("data: {} training samples of {} tokens per epoch{}", train_data_->size(), t.seq_len,
            valid_data_ ? fmt::format(", {} validation samples", valid_data_->size()) : "");
}

void Trainer::open_sft_data() {
  const auto& t = recipe_.training;
  const auto& d = recipe_.data;
  for (const auto& prefix : d.prefixes) {
    check(data::is_sft_dataset(prefix), "{}: data.prefixes: {} is pretraining data but {} is SFT data (a "
          "PREFIX.mask file); a recipe trains on one kind", recipe_.source, prefix, d.prefixes.front());
  }
  check(d.weights.empty(), "{}: data.weights: SFT datasets are not blended by weight; every sample is used once "
        "per epoch", recipe_.source);
  // Packed rows take their positions [B, T] whole; sequence parallel's sliced learned-position
  // table (gpt2) reads one position per token of a [T] sequence only. Rotary positions are applied
  // after the sequence is gathered, so they work.
  check(!tp_ || !tp_->sequence_parallel || !model_->named_parameters().contains("model.embed_positions.weight"),
        "{}: parallel.sequence_parallel: SFT data with learned position embeddings ({}) is not supported; train it "
        "without sequence_parallel", recipe_.source, model_->config().model_type);
  SftDataSpec spec{d.prefixes, t.seq_len, d.packing, d.valid_fraction, d.seed, model_->config().vocab_size};
  train_data_ = sft_samples(spec, data::Split::train);
  if (d.valid_fraction > 0 && recipe_.logging.eval_interval > 0) valid_data_ = sft_samples(spec, data::Split::valid);
  make_batch(*train_data_, 0, 1, t.seq_len);  // reads (and checks) the first row now, before any step
}

int64_t Trainer::tokens_per_step() const {
  const auto& t = recipe_.training;
  return t.micro_batch_size * t.grad_accum_steps * t.seq_len;
}

std::string Trainer::checkpoints_dir() const { return (fs::path(recipe_.output_dir) / "checkpoints").string(); }

torch::Tensor Trainer::language_model_loss(const torch::Tensor& logits, const torch::Tensor& targets) const {
  return tp_ ? parallel::tensor_parallel_loss(*tp_, logits.to(torch::kFloat), targets) : next_token_loss(logits, targets);
}

torch::Tensor Trainer::batch_logits(const Batch& batch) {
  if (!batch.position_ids.defined()) return model_->forward(batch.inputs.to(device_));
  PackedPositions packed{batch.position_ids.to(device_), batch.segment_ids.to(device_)};
  return model_->forward_packed(batch.inputs.to(device_), &packed);
}

double Trainer::matmul_peak() const {
  return matmul_peak_gflops(autocast_.enabled ? autocast_.dtype : torch::kFloat, device_);
}

StepResult Trainer::step() {
  const auto& t = recipe_.training;
  auto start = std::chrono::steady_clock::now();
  model_->train();
  torch::Tensor loss_sum = torch::zeros({}, torch::kFloat64);
  // This rank's consecutive share of the step's micro-batches (all of them in one process).
  const int64_t per_rank = t.grad_accum_steps / dp_.size();
  std::vector<Batch> batches;
  for (int64_t micro = dp_.rank() * per_rank; micro < (dp_.rank() + 1) * per_rank; ++micro) {
    batches.push_back(make_batch(*train_data_, state_.data_cursor + micro * t.micro_batch_size, t.micro_batch_size,
                                 t.seq_len));
    if (tp_ && tp_->sequence_parallel) batches.back() = pad_batch_width(batches.back(), tp_->size);
  }
  // Masked (SFT) data: every trained token of the step weighs the same, however they fall into
  // micro-batches and ranks (HF's num_items_in_batch): the loss is the sum of token losses over the
  // step divided by the step's trained tokens, counted on all ranks before any backward.
  const bool masked = train_data_->masked();
  double step_tokens = 0;
  if (masked) {
    for (const auto& b : batches) step_tokens += static_cast<double>(b.targets.ne(-100).sum().item<int64_t>());
    step_tokens = dp_.sum(step_tokens);
  }
  for (const auto& batch : batches) {
    torch::Tensor loss, objective;
    {
      AutocastScope autocast(autocast_);
      auto logits = batch_logits(batch);  // [B, T, V] (V / tp under tensor parallelism)
      loss = language_model_loss(logits, batch.targets.to(device_));
      if (masked) {
        // The mean over this micro-batch's trained tokens, back to their sum (none: no loss at all).
        const auto tokens = static_cast<double>(batch.targets.ne(-100).sum().item<int64_t>());
        loss = tokens > 0 ? loss * tokens : logits.sum() * 0.0;
        objective = loss / std::max(step_tokens, 1.0) + model_->aux_loss() / static_cast<double>(t.grad_accum_steps);
      } else {
        loss = loss + model_->aux_loss();
        // Scaled so that the accumulated gradient (summed over ranks) is that of the mean over all
        // micro-batches of the step (and by the fp16 loss scale, undone before the update).
        objective = loss / static_cast<double>(t.grad_accum_steps);
      }
    }
    loss_scaler_.scale_loss(objective).backward();
    loss_sum += loss.detach().to(torch::kCPU, torch::kFloat64);
  }
  if (tp_) parallel::sync_tensor_parallel_grads(model_, *tp_);  // before the data-parallel reduction
  state_.data_cursor += t.micro_batch_size * t.grad_accum_steps;
  StepResult r;
  r.loss = dp_.sum(loss_sum.item<double>()) / (masked ? std::max(step_tokens, 1.0) : static_cast<double>(t.grad_accum_steps));
  r.lr = schedule_->at(state_.step + 1);
  // fp16: every rank skips the update when any rank's gradients overflowed (their sum would too).
  const bool finite = !loss_scaler_.enabled() || !dp_.any(!loss_scaler_.unscale(trainable_));
  loss_scaler_.update(finite);
  if (finite) {
    check(std::isfinite(r.loss), "training diverged: loss is {} at step {} (lower optimizer.lr?)", r.loss,
          state_.step + 1);
    r.grad_norm = optimizer_->step(r.lr, recipe_.optimizer.grad_clip);
  } else {
    r.skipped = true;
    r.grad_norm = std::numeric_limits<double>::infinity();
    log::warn("step {}: fp16 gradients overflowed; update skipped, loss scale now {:g}", state_.step + 1,
              loss_scaler_.scale());
  }
  optimizer_->zero_grad();
  state_.step += 1;
  state_.tokens_seen += tokens_per_step();
  state_.lr = r.lr;
  state_.last_loss = r.loss;
  r.seconds = seconds_since(start);
  return r;
}

double Trainer::evaluate() {
  check(valid_data_ != nullptr, "evaluate: no validation split (data.valid_fraction is 0)");
  const auto& t = recipe_.training;
  torch::NoGradGuard no_grad;
  model_->eval();
  double total = 0, tokens = 0;
  const bool masked = valid_data_->masked();  // SFT: the mean over trained tokens, as in step()
  for (int64_t i = dp_.rank(); i < recipe_.logging.eval_steps; i += dp_.size()) {
    // The same leading validation samples every time, so val_loss values are comparable.
    auto batch = make_batch(*valid_data_, i * t.micro_batch_size, t.micro_batch_size, t.seq_len);
    if (tp_ && tp_->sequence_parallel) batch = pad_batch_width(batch, tp_->size);
    AutocastScope autocast(autocast_);
    const double loss = language_model_loss(batch_logits(batch), batch.targets.to(device_)).item<double>();
    const double count = masked ? static_cast<double>(batch.targets.ne(-100).sum().item<int64_t>()) : 1.0;
    if (count > 0) total += loss * count, tokens += count;
  }
  model_->train();
  return dp_.sum(total) / (masked ? std::max(dp_.sum(tokens), 1.0) : static_cast<double>(recipe_.logging.eval_steps));
}

void Trainer::resume(const std::string& checkpoint) {
  auto dir = find_resumable_checkpoint(checkpoint, checkpoints_dir(), required_checkpoint_files());
  // Each rank reads the slices of its pieces of the model, whatever layout wrote the checkpoint.
  auto role = checkpoint_role(mesh_.get(), recipe_, tp_ ? &tp_->shards : nullptr);
  state_ = load_checkpoint(dir, model_, *optimizer_, role);
  restore_torch_rng(state_.rng_state_hex, dir + "/trainer_state.json");
  loss_scaler_.restore(state_.loss_scale, state_.loss_scale_good_steps);
  if (state_.recipe_snapshot != recipe_.snapshot) {
    log::warn("the recipe differs from the one checkpoint {} was trained with; continuing with the new one", dir);
  }
  state_.recipe_snapshot = recipe_.snapshot;
  last_saved_step_ = state_.step;
  log::info("resumed from {} at step {} ({} tokens seen)", dir, state_.step, state_.tokens_seen);
}

void Trainer::save() {
  if (!options_.write_outputs || last_saved_step_ == state_.step) return;
  state_.rng_state_hex = capture_torch_rng();
  state_.loss_scale = loss_scaler_.scale();
  state_.loss_scale_good_steps = loss_scaler_.good_steps();
  auto start = std::chrono::steady_clock::now();
  // Every rank takes part: gathering a sharded optimizer state (to data-parallel rank 0), then
  // writing its pieces into the one distributed checkpoint (train/checkpoint.h).
  auto optimizer_state = optimizer_->gather_state_dict();
  auto role = checkpoint_role(mesh_.get(), recipe_, tp_ ? &tp_->shards : nullptr);
  std::string dir;
  try {
    std::function<void(const std::string&)> write_adapter;
    // Under tp the adapter is written whole: gathered here, on every rank (a collective).
    StateDict full;
    if (recipe_.lora.enabled && tp_) full = parallel::gather_trainable_parameters(model_, *tp_);
    if (recipe_.lora.enabled) write_adapter = [this, &full](const std::string& d) {
      peft::save_adapter(model_, recipe_.lora, d, tp_ ? &full : nullptr);
    };
    dir = save_checkpoint(checkpoints_dir(), recipe_.checkpoint.keep_last, model_, optimizer_state, state_,
                          recipe_.tokenizer.path, role, write_adapter);
  } catch (const std::exception& e) {
    // save_checkpoint removed its partial folder; the last committed checkpoint is untouched.
    fail("the checkpoint of step {} could not be saved in {} ({}); nothing of it was kept, and {} still names "
         "the last committed checkpoint: free space and continue with --resume", state_.step, checkpoints_dir(),
         e.what(), (fs::path(checkpoints_dir()) / "latest").string());
  }
  log::info("checkpoint {} saved in {:.1f} s", dir, seconds_since(start));
  last_saved_step_ = state_.step;
}

void Trainer::log_step(const StepResult& r, double interval_seconds, int64_t interval_tokens) {
  TrainRecord rec;
  rec.step = state_.step;
  rec.loss = r.loss, rec.lr = r.lr, rec.grad_norm = r.grad_norm;
  rec.tokens = state_.tokens_seen;
  rec.tokens_per_sec = interval_seconds > 0 ? static_cast<double>(interval_tokens) / interval_seconds : 0;
  rec.mfu = flops_per_token_ * rec.tokens_per_sec / (matmul_peak() * 1e9);
  log::info("step {}/{}  loss {:.4f}  lr {:.3e}  grad_norm {:.3f}  {:.0f} tokens/s  MFU {:.1f}%", rec.step,
            recipe_.training.max_steps, rec.loss, rec.lr, rec.grad_norm, rec.tokens_per_sec, 100 * rec.mfu);
  if (metrics_) metrics_->log_train(rec);
}

RunEnd Trainer::run() {
  const auto& t = recipe_.training;
  const auto& lg = recipe_.logging;
  if (writes_outputs()) {
    metrics_ = std::make_unique<MetricsLog>(recipe_.output_dir, state_.step > 0 ? state_.step : -1);
    remove_stale_checkpoint_temps(checkpoints_dir());  // no rank saves before this one prepares a folder
  }
  install_stop_handlers();  // forma train installed them already, before building the model
  // A signal that came while the model and data loaded: no step has run in this process, so there
  // is nothing new to save (a resumed run's checkpoint is still the latest); stop at once.
  if (dp_.any(stop_requested())) {
    if (stop_requested()) log::warn("signal {} received before the first step: stopping without training",
                                    stop_signal_number());
    return RunEnd::stopped;
  }
  matmul_peak();  // measured once now, not in the middle of the first interval
  log::info("training steps {}..{}: {} tokens per step ({} x {} x {}), {:.3g} FLOPs per token", state_.step + 1,
            t.max_steps, tokens_per_step(), t.micro_batch_size, t.grad_accum_steps, t.seq_len, flops_per_token_);
  std::optional<Progress> progress;
  if (dp_.is_main()) progress.emplace("train", t.max_steps, "step"), progress->update(state_.step);
  double interval_seconds = 0;
  int64_t interval_tokens = 0;
  RunEnd end = RunEnd::finished;
  while (state_.step < t.max_steps) {
    StepResult r;
    try {
      r = step();
    } catch (const Error&) {
      // A bad sample (say, an id outside the vocabulary) stops the run before this step changes any
      // weight: one process keeps what it trained so far. Several ranks cannot save (the others are
      // waiting in this step's collectives); the launcher stops them, and they resume from the last
      // periodic checkpoint.
      if (!mesh_ || mesh_->world_size() == 1) {
        log::warn("stopping on an error in step {}: saving step {} first", state_.step + 1, state_.step);
        save();
      }
      throw;
    }
    interval_seconds += r.seconds;
    interval_tokens += tokens_per_step();
    if (progress) progress->update(state_.step, fmt::format("loss {:.4f}", r.loss));
    if (state_.step % lg.log_interval == 0 || state_.step == t.max_steps) {
      log_step(r, interval_seconds, interval_tokens);
      interval_seconds = 0, interval_tokens = 0;
    }
    if (valid_data_ && lg.eval_interval > 0 && (state_.step % lg.eval_interval == 0 || state_.step == t.max_steps)) {
      double val = evaluate();
      log::info("step {}: val_loss {:.4f}", state_.step, val);
      if (metrics_) metrics_->log_eval(state_.step, val), metrics_->write_svg();
    }
    if (recipe_.checkpoint.interval > 0 && state_.step % recipe_.checkpoint.interval == 0) save();
    if (options_.stop_after_step > 0 && state_.step >= options_.stop_after_step && state_.step < t.max_steps) {
      log::info("stopping after step {} as asked (--stop-after)", state_.step);
      end = RunEnd::stopped;
      break;
    }
    if (dp_.any(stop_requested())) {  // all ranks stop after the same step, whichever got the signal
      if (stop_requested()) log::warn("signal {} received: stopping after step {}", stop_signal_number(), state_.step);
      end = RunEnd::stopped;
      break;
    }
  }
  if (progress) progress->finish(fmt::format("loss {:.4f}", state_.last_loss));
  save();
  if (metrics_) metrics_->write_svg();
  return end;
}

}  // namespace forma::train

// Data parallelism as the trainer sees it: this process's data-parallel rank and group, the few
// reductions the training loop needs (the loss, a stop request), and the optimizer that makes the
// ranks' gradients one: all-reduced in buckets with AdamW replicated (zero_stage 0), or
// reduce-scattered with the AdamW state sharded (zero_stage 1, zero_optimizer.h).
//
// Gradients are summed, not averaged: every rank scales its micro-batch losses by
// 1 / training.grad_accum_steps (the global micro-batch count), so the sum over ranks is the mean
// over the global batch, the same number one process computes.
#pragma once
#include <memory>
#include <vector>

#include "forma/parallel/device_mesh.h"
#include "forma/train/optimizer.h"

namespace forma::parallel {

class DataParallel {
 public:
  DataParallel() = default;  // one process: rank 0 of 1, no communication
  explicit DataParallel(std::shared_ptr<DeviceMesh> mesh);

  int rank() const { return mesh_ ? mesh_->coord(Dim::dp) : 0; }
  int size() const { return mesh_ ? mesh_->size(Dim::dp) : 1; }
  bool distributed() const { return mesh_ != nullptr; }
  // World rank 0: the one process that writes logs, metrics and checkpoints.
  bool is_main() const { return !mesh_ || mesh_->rank() == 0; }

  double sum(double value) const;  // over the data-parallel ranks
  bool any(bool value) const;      // over the world: e.g. a SIGTERM that reached one rank first
  void barrier() const;            // the world
  std::vector<double> gather_world(double value) const;  // every world rank's value, in rank order

  // Rank 0's parameter values on every rank (as DDP does at construction): all ranks start equal
  // even if initialisation or loading were not deterministic.
  void broadcast_parameters(const std::vector<train::NamedParameter>& params) const;

  // AdamW over `params`: make_local_adamw in one process; otherwise zero_stage 0 (replicated) or 1.
  // Under tensor parallelism `params` are this rank's pieces, with their norm shares; the gradient
  // norm is then summed over the tensor-parallel group as well.
  std::unique_ptr<train::Optimizer> make_optimizer(std::vector<train::NamedParameter> params,
                                                   const train::AdamWOptions& options, int zero_stage,
                                                   double bucket_mb) const;

 private:
  std::shared_ptr<DeviceMesh> mesh_;
};

// zero_stage 0: gradients all-reduced bucket by bucket (all buckets in flight at once), then
// clip_grad_norm and AdamW on every rank exactly as in one process.
std::unique_ptr<train::Optimizer> make_all_reduce_adamw(const GroupPtr& group, std::vector<train::NamedParameter> params,
                                                        const train::AdamWOptions& options, int64_t bucket_bytes,
                                                        train::ModelParallelSum model_parallel_sum = {});

}  // namespace forma::parallel

// ZeRO stage 1 (Rajbhandari et al. 2020): the AdamW state sharded across the data-parallel ranks.
// Gradients travel in the flat buckets of grad_buckets.h; each bucket is reduce-scattered, so a rank
// receives the summed gradient of its 1/dp slice of every bucket; it clips by the global norm
// (partial sums of squares all-reduced), applies AdamW to that slice of the parameters with the
// moments it alone holds, and the updated slices are all-gathered into every rank's parameters.
// AdamW is elementwise, so this is the unsharded optimizer's math (adamw_update, per parameter
// segment, with its own weight-decay flag and step count); only the gradient norm is summed in a
// different order (in fp64). Optimizer state memory per rank: 2 x parameters / dp floats.
#pragma once
#include <memory>

#include "forma/parallel/device_mesh.h"
#include "forma/train/optimizer.h"

namespace forma::parallel {

// `model_parallel_sum`: as train::clip_grad_norm's (the norm's partial sums over tensor-parallel peers).
std::unique_ptr<train::Optimizer> make_zero_adamw(const GroupPtr& group, std::vector<train::NamedParameter> params,
                                                  const train::AdamWOptions& options, int64_t bucket_bytes,
                                                  train::ModelParallelSum model_parallel_sum = {});

}  // namespace forma::parallel

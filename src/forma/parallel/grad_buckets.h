// The flat layout in which gradients travel between data-parallel ranks, as in PyTorch's DDP:
// parameters in registration order packed into fp32 buckets of about `bucket_bytes`, one collective
// per bucket instead of one per tensor, several in flight at once. A parameter is never split
// between buckets (one larger than a bucket gets a bucket of its own), and every bucket is padded to
// a multiple of the group size so that it divides into equal shards (ZeRO's reduce-scatter).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "forma/parallel/device_mesh.h"
#include "forma/train/adamw.h"

namespace forma::parallel {

struct BucketEntry {
  size_t param = 0;    // index into the parameter list
  int64_t offset = 0;  // first element within the bucket
  int64_t numel = 0;
};

struct GradBucket {
  std::vector<BucketEntry> entries;
  int64_t numel = 0;   // elements holding parameters
  int64_t padded = 0;  // numel rounded up to a multiple of the shard count
};

// Throws forma::Error when a parameter is not a contiguous fp32 tensor.
std::vector<GradBucket> plan_grad_buckets(const std::vector<train::NamedParameter>& params, int64_t bucket_bytes,
                                          int shards);

// For each parameter: does any rank of `group` hold a gradient for it? One process leaves a parameter
// without a gradient (an expert no token was routed to) alone in AdamW; data parallelism must do the
// same, and give a gradient to the others on every rank.
std::vector<bool> gradient_presence(const GroupPtr& group, const std::vector<train::NamedParameter>& params);

// The bucket's gradients as one flat tensor of `padded` elements (zeros where a parameter has no
// gradient). The parameters' own gradients are released, so gradient memory is not held twice.
torch::Tensor take_bucket_gradients(const GradBucket& bucket, const std::vector<train::NamedParameter>& params);

}  // namespace forma::parallel

// The device mesh: the world's ranks laid out as pp x dp x cp x tp (tp innermost, as in Megatron, so
// that tensor-parallel peers are neighbours: on one node, on the fastest links). Every dimension has
// its process group, passed explicitly to whoever needs it (no global process groups).
// A dimension of size 1 still has a (trivial) group, so code paths do not special-case it.
#pragma once
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/torch.h>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include <array>
#include <chrono>
#include <string>

#include "forma/parallel/dist_env.h"

namespace forma::parallel {

enum class Dim { pp = 0, dp = 1, cp = 2, tp = 3 };
constexpr std::array<Dim, 4> kAllDims = {Dim::pp, Dim::dp, Dim::cp, Dim::tp};
const char* dim_name(Dim d);

struct MeshShape {
  int pp = 1, dp = 1, cp = 1, tp = 1;
  int size(Dim d) const;
  int world() const { return pp * dp * cp * tp; }
  // Coordinates of `rank` (tp fastest-varying) and back.
  std::array<int, 4> coords(int rank) const;
  int rank_of(const std::array<int, 4>& coords) const;
};

// A c10d backend (Gloo or NCCL) used directly: c10d::ProcessGroup would only dispatch to it.
using GroupPtr = c10::intrusive_ptr<c10d::Backend>;

class DeviceMesh {
 public:
  // Rendezvous through a TCPStore at env.master_addr:master_port (rank 0 hosts it), then one group
  // for the world and one per dimension: NCCL when `device` is a GPU (made current by the caller),
  // Gloo on the CPU. Throws forma::Error when the shape does not multiply to the world size, naming both.
  DeviceMesh(const DistEnv& env, const MeshShape& shape,
             std::chrono::milliseconds timeout = std::chrono::minutes(5), torch::Device device = torch::kCPU);

  int rank() const { return rank_; }
  int world_size() const { return shape_.world(); }
  const MeshShape& shape() const { return shape_; }
  int coord(Dim d) const { return coords_[static_cast<size_t>(d)]; }
  int size(Dim d) const { return shape_.size(d); }
  const GroupPtr& world() const { return world_; }
  const GroupPtr& group(Dim d) const { return groups_[static_cast<size_t>(d)]; }
  const torch::Device& device() const { return device_; }  // where the groups' collectives run

 private:
  MeshShape shape_;
  int rank_;
  std::array<int, 4> coords_;
  torch::Device device_;
  c10::intrusive_ptr<c10d::Store> store_;
  GroupPtr world_;
  std::array<GroupPtr, 4> groups_;
};

}  // namespace forma::parallel

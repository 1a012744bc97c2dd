#include "forma/parallel/device_mesh.h"
#include <atomic>

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "forma/core/error.h"
#include "forma/core/log.h"
#include "forma/parallel/nccl_group.h"

namespace forma::parallel {

const char* dim_name(Dim d) {
  static const char* names[] = {"pp", "dp", "cp", "tp"};
  return names[static_cast<int>(d)];
}

int MeshShape::size(Dim d) const {
  switch (d) {
    case Dim::pp: return pp;
    case Dim::dp: return dp;
    case Dim::cp: return cp;
    case Dim::tp: return tp;
  }
  return 1;
}

std::array<int, 4> MeshShape::coords(int rank) const {
  std::array<int, 4> c{};
  for (int i = 3; i >= 0; --i) {
    int n = size(static_cast<Dim>(i));
    c[static_cast<size_t>(i)] = rank % n;
    rank /= n;
  }
  return c;
}

int MeshShape::rank_of(const std::array<int, 4>& c) const {
  int rank = 0;
  for (int i = 0; i < 4; ++i) rank = rank * size(static_cast<Dim>(i)) + c[static_cast<size_t>(i)];
  return rank;
}

namespace {

GroupPtr make_gloo_group(const c10::intrusive_ptr<c10d::Store>& store, const std::string& prefix, int rank,
                         int size, const std::shared_ptr<::gloo::transport::Device>& device,
                         std::chrono::milliseconds timeout) {
  auto options = c10d::ProcessGroupGloo::Options::create(timeout);
  options->devices.push_back(device);
  auto prefixed = c10::make_intrusive<c10d::PrefixStore>(prefix, store);
  return c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, rank, size, options);
}

}  // namespace

DeviceMesh::DeviceMesh(const DistEnv& env, const MeshShape& shape, std::chrono::milliseconds timeout,
                       torch::Device device)
    : shape_(shape), rank_(env.rank), coords_(shape.coords(env.rank)), device_(device) {
  check(shape.pp >= 1 && shape.dp >= 1 && shape.cp >= 1 && shape.tp >= 1,
        "parallel sizes must be at least 1 (pp={} dp={} cp={} tp={})", shape.pp, shape.dp, shape.cp, shape.tp);
  check(shape.world() == env.world_size,
        "the parallel layout pipeline_parallel={} x data_parallel={} x context_parallel={} x "
        "tensor_parallel={} = {} processes, but the world has {} (from {})",
        shape.pp, shape.dp, shape.cp, shape.tp, shape.world(), env.world_size, env.source);
  c10d::TCPStoreOptions opts;
  opts.port = static_cast<uint16_t>(env.master_port);
  opts.isServer = env.rank == 0 && !env.store_hosted;
  opts.numWorkers = static_cast<size_t>(env.world_size);
  opts.waitWorkers = false;
  opts.timeout = timeout;
  try {
    // A launcher's store outlives the meshes of a process, so each mesh keeps its keys apart; every
    // rank builds its meshes in the same order, so the n-th meshes of all ranks share a prefix.
    static std::atomic<int> meshes_built{0};
    store_ = c10::make_intrusive<c10d::PrefixStore>(fmt::format("mesh{}/", meshes_built++),
                                                    c10::make_intrusive<c10d::TCPStore>(env.master_addr, opts));
  } catch (const std::exception& e) {
    const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
    fail("rendezvous at {}:{} failed: {}", env.master_addr, env.master_port,
         c10_error ? c10_error->what_without_backtrace() : e.what());
  }
  // Gloo binds to the address this host uses to reach the master: loopback when the master is local.
  bool local = env.master_addr == "127.0.0.1" || env.master_addr == "localhost";
  std::shared_ptr<::gloo::transport::Device> gloo_device;
  if (!device_.is_cuda()) {
    gloo_device = local ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                        : c10d::ProcessGroupGloo::createDefaultDevice();
  }
  auto make = [&](const std::string& prefix, int rank, int size) {
    if (device_.is_cuda()) {
      return make_nccl_group(c10::make_intrusive<c10d::PrefixStore>(prefix, store_), rank, size, timeout);
    }
    return make_gloo_group(store_, prefix, rank, size, gloo_device, timeout);
  };
  try {
    world_ = make("world/", env.rank, env.world_size);
    // For each dimension, this rank's group holds the ranks that differ from it only in that coordinate.
    // The group is named by the rank of its first member, so all members agree on the store prefix.
    for (Dim d : kAllDims) {
      auto first = coords_;
      first[static_cast<size_t>(d)] = 0;
      std::string prefix = fmt::format("{}/{}/", dim_name(d), shape.rank_of(first));
      groups_[static_cast<size_t>(d)] = make(prefix, coord(d), size(d));
    }
  } catch (const std::exception& e) {
    const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
    fail("rendezvous of {} processes at {}:{} did not complete within {:g} s (are all ranks started?): {}",
         env.world_size, env.master_addr, env.master_port, timeout.count() / 1000.0,
         c10_error ? c10_error->what_without_backtrace() : e.what());
  }
  log::debug("rank {} in mesh pp={} dp={} cp={} tp={} at coords ({},{},{},{}), {} on {}", rank_, shape.pp, shape.dp,
             shape.cp, shape.tp, coords_[0], coords_[1], coords_[2], coords_[3], world_->getBackendName(),
             device_.str());
}

}  // namespace forma::parallel

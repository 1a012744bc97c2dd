// Where a process sits in a distributed run, read from the environment of whichever launcher
// started it: forma launch / torchrun (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR,
// MASTER_PORT), Slurm's srun (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, ...) or Open MPI's mpirun
// (OMPI_COMM_WORLD_RANK, _SIZE, _LOCAL_RANK, _LOCAL_SIZE). With none of them: one process.
#pragma once
#include <functional>
#include <string>

namespace forma::parallel {

struct DistEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  // forma launch's node 0 hosts the rendezvous store (FORMA_STORE_HOSTED=1); otherwise rank 0 does.
  bool store_hosted = false;
  std::string source = "none";  // "torchrun", "slurm", "openmpi" or "none"
};

using EnvLookup = std::function<const char*(const char*)>;

// Throws forma::Error naming the variable when a value is not a number or out of range.
DistEnv detect_dist_env(const EnvLookup& getenv_fn = nullptr);

}  // namespace forma::parallel

#include "forma/parallel/dist_env.h"

#include <cstdlib>

#include "forma/core/error.h"

namespace forma::parallel {

namespace {

int parse_int(const char* name, const char* value, int min_value) {
  char* end = nullptr;
  long v = std::strtol(value, &end, 10);
  check(end != value && *end == '\0' && v >= min_value && v < (1L << 30),
        "environment variable {}={} is not an integer >= {}", name, value, min_value);
  return static_cast<int>(v);
}

// Reads the four counts from one launcher's variable names; returns false if `rank_var` is unset.
bool read_family(const EnvLookup& env, DistEnv& out, const char* rank_var, const char* size_var,
                 const char* local_rank_var, const char* local_size_var) {
  const char* rank = env(rank_var);
  if (!rank) return false;
  const char* size = env(size_var);
  check(size != nullptr, "{} is set but {} is not", rank_var, size_var);
  out.rank = parse_int(rank_var, rank, 0);
  out.world_size = parse_int(size_var, size, 1);
  check(out.rank < out.world_size, "{}={} is not below {}={}", rank_var, out.rank, size_var, out.world_size);
  const char* local_rank = env(local_rank_var);
  out.local_rank = local_rank ? parse_int(local_rank_var, local_rank, 0) : out.rank;
  const char* local_size = local_size_var ? env(local_size_var) : nullptr;
  out.local_world_size = local_size ? parse_int(local_size_var, local_size, 1) : out.world_size;
  return true;
}

}  // namespace

DistEnv detect_dist_env(const EnvLookup& getenv_fn) {
  EnvLookup env = getenv_fn ? getenv_fn : EnvLookup([](const char* n) { return std::getenv(n); });
  DistEnv out;
  if (read_family(env, out, "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")) {
    out.source = "torchrun";
  } else if (read_family(env, out, "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID",
                         "SLURM_NTASKS_PER_NODE")) {
    out.source = "slurm";
    // srun gives no master address: the sbatch script exports MASTER_ADDR (first node of the job);
    // SLURM_LAUNCH_NODE_IPADDR (the node that ran srun) is the fallback.
    if (!env("MASTER_ADDR") && env("SLURM_LAUNCH_NODE_IPADDR")) out.master_addr = env("SLURM_LAUNCH_NODE_IPADDR");
  } else if (read_family(env, out, "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
                         "OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE")) {
    out.source = "openmpi";
  }
  if (const char* addr = env("MASTER_ADDR")) out.master_addr = addr;
  if (const char* port = env("MASTER_PORT")) {
    out.master_port = parse_int("MASTER_PORT", port, 1);
    check(out.master_port < 65536, "environment variable MASTER_PORT={} is not a port", port);
  }
  if (const char* hosted = env("FORMA_STORE_HOSTED")) out.store_hosted = std::string(hosted) == "1";
  return out;
}

}  // namespace forma::parallel

// `forma launch`: starts the worker processes of one node the way torchrun does (same flags, same
// environment), prefixes their output with the rank, writes per-rank logs, and tears the whole
// group down within seconds when any worker fails, so that no run hangs on a dead peer.
#pragma once
#include <functional>
#include <string>
#include <vector>

namespace forma::parallel {

// The most workers one launcher starts. The largest single machines have a few hundred cores and
// 8 or 16 GPUs, and workers are one per GPU or a handful per CPU node; a larger count is a typo, and
// forking it would take minutes (100,000 workers took over a minute before this bound).
constexpr int kMaxProcPerNode = 1024;
// The launcher holds 3 descriptors per worker (its stdout and stderr pipes and its log file), plus
// some of its own: --nproc-per-node is also bounded by the open-file limit (ulimit -n), checked
// before anything starts.
constexpr int kLauncherFdsPerWorker = 3;
constexpr int kLauncherFdReserve = 64;

struct LaunchOptions {
  int nproc_per_node = 1;
  int nnodes = 1;
  int node_rank = 0;
  std::string master_addr = "127.0.0.1";
  // Port of the rendezvous store on node 0. Unset (-1): any free port on one node (nobody outside
  // needs to know it), 29500 with --nnodes > 1 (torchrun's default). 0: any free port (one node only).
  int master_port = -1;
  std::string log_dir;                // per-rank logs rank_<R>.log; empty: none
  double kill_grace_seconds = 5.0;    // after a failure: SIGTERM, then SIGKILL after this long
  std::vector<std::string> command;   // "forma" as the program means this very binary
  // Tests only: called before each worker's pipes and fork; a nonzero return makes that start fail
  // as if fork had failed with that errno.
  std::function<int(int local_rank)> spawn_fault;
};

// The port a launch uses (master_port with its default resolved; 0 means any free one).
int resolved_master_port(const LaunchOptions& options);

// Node 0's launcher hosts the rendezvous TCPStore for the whole run, as torchrun's agent does, and
// tells its workers so with FORMA_STORE_HOSTED=1 (rank 0 then joins it as a client). The store is up
// before any worker starts, a busy port is named before anything starts, and with port 0 concurrent
// runs on one machine cannot collide.
// Runs the workers to completion. Returns 0 when all exit 0; otherwise 1 after naming the first
// rank that failed and how (exit status or signal). Throws forma::Error on invalid options, and
// when a worker cannot be started (the errno of the failing call named), after stopping and
// reaping the workers already started.
int launch(const LaunchOptions& options);

}  // namespace forma::parallel

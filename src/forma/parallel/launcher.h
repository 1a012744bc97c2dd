// `forma launch`: starts the worker processes of one node the way torchrun does (same flags, same
// environment), prefixes their output with the rank, writes per-rank logs, and tears the whole
// group down within seconds when any worker fails, so that no run hangs on a dead peer.
#pragma once
#include <string>
#include <vector>

namespace forma::parallel {

struct LaunchOptions {
  int nproc_per_node = 1;
  int nnodes = 1;
  int node_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::string log_dir;                // per-rank logs rank_<R>.log; empty: none
  double kill_grace_seconds = 5.0;    // after a failure: SIGTERM, then SIGKILL after this long
  std::vector<std::string> command;   // "forma" as the program means this very binary
};

// Runs the workers to completion. Returns 0 when all exit 0; otherwise 1 after naming the first
// rank that failed and how (exit status or signal). Throws forma::Error on invalid options.
int launch(const LaunchOptions& options);

}  // namespace forma::parallel

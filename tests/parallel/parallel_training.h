// Shared by the distributed training tests: `forma train` on the tiny recipe, in one process or as
// real processes under `forma launch` on loopback, and the comparison of learning curves.
#pragma once
#include <string>
#include <vector>

#include "test_paths.h"
#include "train/train_fixture.h"

namespace forma::test {

struct ParallelRun {
  std::string model;                // fixture folder under hf-tiny
  int processes = 1;
  int master_port = 0;              // 0: the launcher's default, any free port
  std::vector<std::string> sets;    // extra --set arguments
  std::vector<std::string> flags;   // extra forma train flags
};

// 20 steps of 2 micro-batches of 2 sequences (the global batch), on the pattern dataset `data`,
// writing to `out`; no checkpoint but the last. Under `forma launch` when run.processes > 1, or when
// `launch_flags` are given (they replace --nproc-per-node and --master-port).
std::string training_command(const std::string& data, const std::string& out, const ParallelRun& run,
                             const std::vector<std::string>& launch_flags = {});
CommandResult run_parallel_training(const std::string& data, const std::string& out, const ParallelRun& run);

double relative_difference(double a, double b);

// Per-step losses and gradient norms: within 1e-6 relative at the first step, 1e-4 at every step.
void expect_same_curve(const std::vector<LoggedStep>& got, const std::vector<LoggedStep>& want,
                       const std::string& what);

}  // namespace forma::test

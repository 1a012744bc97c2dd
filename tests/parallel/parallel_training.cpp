#include "parallel/parallel_training.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

namespace forma::test {

std::string training_command(const std::string& data, const std::string& out, const ParallelRun& run,
                             const std::vector<std::string>& launch_flags) {
  std::vector<std::string> args;
  if (!launch_flags.empty()) {
    args = {"launch"};
    args.insert(args.end(), launch_flags.begin(), launch_flags.end());
    args.insert(args.end(), {"--", "forma"});
  } else if (run.processes > 1) {
    args = {"launch", "--nproc-per-node", std::to_string(run.processes)};
    if (run.master_port != 0) args.insert(args.end(), {"--master-port", std::to_string(run.master_port)});
    args.insert(args.end(), {"--", "forma"});
  }
  args.insert(args.end(), {"train", "--config", tiny_recipe_path()});
  std::vector<std::string> sets{"model.path=" + fixture("hf-tiny/" + run.model + "/config.json"),
                                "data.prefixes=" + data, "output_dir=" + out, "training.micro_batch_size=2",
                                "training.grad_accum_steps=2", "training.max_steps=20", "checkpoint.interval=0"};
  sets.insert(sets.end(), run.sets.begin(), run.sets.end());
  for (auto& s : sets) args.insert(args.end(), {"--set", s});
  args.insert(args.end(), run.flags.begin(), run.flags.end());
  std::string command = "'" + forma_binary() + "'";
  for (const auto& a : args) command += " '" + a + "'";  // test arguments hold no single quotes
  return command;
}

CommandResult run_parallel_training(const std::string& data, const std::string& out, const ParallelRun& run) {
  return run_command(training_command(data, out, run));
}

double relative_difference(double a, double b) { return std::abs(a - b) / std::max(std::abs(b), 1e-12); }

void expect_same_curve(const std::vector<LoggedStep>& got, const std::vector<LoggedStep>& want,
                       const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  ASSERT_FALSE(want.empty()) << what;
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ(got[i].step, want[i].step) << what;
    double tolerance = i == 0 ? 1e-6 : 1e-4;
    EXPECT_LE(relative_difference(got[i].loss, want[i].loss), tolerance)
        << what << " step " << want[i].step << ": loss " << got[i].loss << " vs " << want[i].loss;
    if (want[i].grad_norm == 0) continue;  // validation records
    EXPECT_LE(relative_difference(got[i].grad_norm, want[i].grad_norm), tolerance)
        << what << " step " << want[i].step << ": grad_norm " << got[i].grad_norm << " vs " << want[i].grad_norm;
  }
}

}  // namespace forma::test

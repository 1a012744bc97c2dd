// Starts the real forma binary as a launcher of small shell workers.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "forma/core/files.h"
#include "forma/core/error.h"
#include "forma/parallel/dist_env.h"

#include <map>
#include <regex>

#include "test_paths.h"

namespace {

forma::test::CommandResult run(const std::string& args) { return forma::test::run_forma("launch " + args); }

}  // namespace

TEST(Launcher, WorkersGetTorchrunEnvironmentAndPrefixedOutput) {
  std::string logs = forma::test::scratch_dir() + "/logs";
  auto r = run("--nproc-per-node 2 --nnodes 2 --node-rank 1 --master-port 29611 --log-dir " + logs +
               " -- sh -c 'echo env $RANK $WORLD_SIZE $LOCAL_RANK $LOCAL_WORLD_SIZE $MASTER_ADDR $MASTER_PORT'");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  // node 1 of 2 with 2 workers each holds global ranks 2 and 3
  EXPECT_NE(r.output.find("[rank 2] env 2 4 0 2 127.0.0.1 29611"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("[rank 3] env 3 4 1 2 127.0.0.1 29611"), std::string::npos) << r.output;
  EXPECT_EQ(forma::read_file(logs + "/rank_3.log"), "env 3 4 1 2 127.0.0.1 29611\n");
}

TEST(Launcher, DeadWorkerStopsTheOthersAndIsNamed) {
  // rank 1 is killed by SIGKILL after a moment; rank 0 would otherwise sleep for a minute.
  auto r = run("--nproc-per-node 2 --kill-grace 2 -- sh -c 'if [ $RANK = 1 ]; then sleep 0.5; kill -9 $$; fi; sleep 60'");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_LT(r.seconds, 15.0);
  EXPECT_NE(r.output.find("rank 1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("signal 9"), std::string::npos) << r.output;
}

TEST(Launcher, ReportsEachWorkersPeakMemory) {
  // Rank 0's shell holds a 500 MB string (bash: dash's $(...) would not keep it); rank 1 holds nothing.
  auto r = run("--nproc-per-node 2 -- bash -c 'if [ $RANK = 0 ]; then x=$(head -c 500000000 /dev/zero | tr \\\\0 a); "
               "echo ${#x}; fi'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("[rank 0] 500000000"), std::string::npos) << r.output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.output, m, std::regex(R"(peak resident memory per worker: rank 0 ([0-9.]+) GB, rank 1 ([0-9.]+) GB)")))
      << r.output;
  // A peak includes what the forked launcher held before exec (~0.19 GB with LibTorch's CUDA libraries
  // loaded), so rank 1 reports that; rank 0's peak is its 500 MB string (0.47 GB) and bash.
  EXPECT_GT(std::stod(m[1]) - std::stod(m[2]), 0.2) << r.output;
}

TEST(Launcher, FailingExitStatusIsReported) {
  auto r = run("--nproc-per-node 2 -- sh -c 'exit $((RANK * 3))'");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("rank 1 exited with exit status 3"), std::string::npos) << r.output;
}

TEST(Launcher, BadOptionsAreNamed) {
  auto r = run("--nproc-per-node 2 --nnodes 2 --node-rank 2 -- true");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--node-rank"), std::string::npos) << r.output;
}

TEST(DistEnv, ReadsEachLauncherFamily) {
  using forma::parallel::detect_dist_env;
  auto from = [](std::map<std::string, std::string> vars) {
    return detect_dist_env([vars](const char* n) -> const char* {
      auto it = vars.find(n);
      return it == vars.end() ? nullptr : it->second.c_str();
    });
  };
  auto none = from({});
  EXPECT_EQ(none.world_size, 1);
  EXPECT_EQ(none.source, "none");
  auto slurm = from({{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "8"}, {"SLURM_LOCALID", "1"},
                     {"MASTER_ADDR", "node0"}, {"MASTER_PORT", "1234"}});
  EXPECT_EQ(slurm.rank, 5);
  EXPECT_EQ(slurm.world_size, 8);
  EXPECT_EQ(slurm.local_rank, 1);
  EXPECT_EQ(slurm.master_addr, "node0");
  EXPECT_EQ(slurm.master_port, 1234);
  EXPECT_EQ(slurm.source, "slurm");
  auto mpi = from({{"OMPI_COMM_WORLD_RANK", "3"}, {"OMPI_COMM_WORLD_SIZE", "4"},
                   {"OMPI_COMM_WORLD_LOCAL_RANK", "1"}, {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"}});
  EXPECT_EQ(mpi.rank, 3);
  EXPECT_EQ(mpi.local_world_size, 2);
  EXPECT_EQ(mpi.source, "openmpi");
  // torchrun's variables win over the scheduler's when both are present (forma launch under srun)
  auto both = from({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "1"}});
  EXPECT_EQ(both.rank, 1);
  EXPECT_THROW(from({{"RANK", "2"}, {"WORLD_SIZE", "2"}}), forma::Error);
  EXPECT_THROW(from({{"RANK", "x"}, {"WORLD_SIZE", "2"}}), forma::Error);
}

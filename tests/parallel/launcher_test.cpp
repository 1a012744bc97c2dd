// Starts the real forma binary as a launcher of small shell workers.
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <thread>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "forma/core/files.h"
#include "forma/core/error.h"
#include "forma/parallel/dist_env.h"
#include "forma/parallel/launcher.h"

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

// Node 0's launcher hosts the rendezvous store. Two runs started together on the default port each
// get a free one (a fixed port shared by two test runs once failed CI with EADDRINUSE).
TEST(Launcher, ConcurrentRunsOnTheDefaultPortGetDifferentFreePorts) {
  const std::string dir = forma::test::scratch_dir();
  const std::string launch = "'" + forma::test::forma_binary() + "' launch --nproc-per-node 2 -- sh -c " +
                             "'echo port $MASTER_PORT hosted $FORMA_STORE_HOSTED; sleep 1'";
  auto r = forma::test::run_command("(" + launch + " > " + dir + "/a.log 2>&1 & " + launch + " > " + dir +
                                    "/b.log 2>&1; wait $!)");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::regex port_line(R"(\[rank 1\] port (\d+) hosted 1)");
  std::smatch a, b;
  std::string a_log = forma::read_file(dir + "/a.log"), b_log = forma::read_file(dir + "/b.log");
  ASSERT_TRUE(std::regex_search(a_log, a, port_line)) << a_log;
  ASSERT_TRUE(std::regex_search(b_log, b, port_line)) << b_log;
  EXPECT_GT(std::stoi(a[1]), 0);
  EXPECT_NE(a[1].str(), b[1].str());
  EXPECT_NE(a_log.find("master 127.0.0.1:" + a[1].str() + ")"), std::string::npos) << a_log;
}

TEST(Launcher, BusyMasterPortIsNamedBeforeAnyWorkerStarts) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << std::strerror(errno);
  ASSERT_EQ(::listen(fd, 1), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const int port = ntohs(addr.sin_port);
  auto r = run("--nproc-per-node 2 --master-port " + std::to_string(port) + " -- echo started");
  ::close(fd);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("--master-port " + std::to_string(port) + ": the rendezvous store cannot listen"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("started"), std::string::npos) << r.output;
  // Port 0 (any free one) is for one node: the other nodes could not know it.
  auto multi = run("--nnodes 2 --master-port 0 -- true");
  EXPECT_EQ(multi.exit_code, 1) << multi.output;
  EXPECT_NE(multi.output.find("--master-port 0 (any free port) needs --nnodes 1"), std::string::npos) << multi.output;
}

TEST(Launcher, TooManyWorkersAreRefusedBeforeStarting) {
  // Used to fork for over a minute, ignoring SIGTERM meanwhile.
  auto r = run("--nproc-per-node 100000 -- true");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_LT(r.seconds, 10.0);
  EXPECT_NE(r.output.find(std::to_string(forma::parallel::kMaxProcPerNode)), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("[rank"), std::string::npos) << r.output;
  // The open-file limit bounds it too: 3 descriptors per worker.
  auto limited = forma::test::run_command("ulimit -n 128 && '" + forma::test::forma_binary() +
                                          "' launch --nproc-per-node 100 -- true");
  EXPECT_EQ(limited.exit_code, 1) << limited.output;
  EXPECT_NE(limited.output.find("ulimit -n"), std::string::npos) << limited.output;
  EXPECT_EQ(limited.output.find("[rank"), std::string::npos) << limited.output;
}

namespace {

// Reads the pid a worker wrote, waiting up to 10 s for it; -1 if it never came.
pid_t wait_for_pid_file(const std::string& path) {
  for (int i = 0; i < 1000; ++i) {
    std::ifstream in(path);
    pid_t pid = -1;
    if (in >> pid) return pid;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return -1;
}

bool process_exists(pid_t pid) { return ::kill(pid, 0) == 0 || errno != ESRCH; }

}  // namespace

// Descriptors run out after two workers started (a real EMFILE from pipe2, in a child process whose
// open-file limit is nearly used up): the launcher names that errno, and stops and reaps both.
TEST(Launcher, WorkersStartedBeforeAFailedStartAreStopped) {
  const std::string dir = forma::test::scratch_dir();
  int report[2];
  ASSERT_EQ(::pipe(report), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(report[0]);
    forma::parallel::LaunchOptions o;
    o.nproc_per_node = 4;
    // Node 1 of 2: node 0 would host the rendezvous store, whose sockets would shift the count below.
    o.nnodes = 2;
    o.node_rank = 1;
    o.kill_grace_seconds = 5;
    o.command = {"sh", "-c", "echo $$ > " + dir + "/pid_$LOCAL_RANK; exec sleep 60"};
    // Each start waits until the previous worker wrote its pid, so the test knows every started one.
    o.spawn_fault = [&](int local_rank) {
      if (local_rank > 0) wait_for_pid_file(dir + "/pid_" + std::to_string(local_rank - 1));
      return 0;
    };
    // 4 workers need 3 x 4 + 64 descriptors by the launcher's check: allow 200, then use all but 7:
    // worker 0 takes 4 while starting and keeps 2, worker 1 likewise, worker 2's second pipe fails.
    struct rlimit files {};
    ::getrlimit(RLIMIT_NOFILE, &files);
    files.rlim_cur = 200;
    ::setrlimit(RLIMIT_NOFILE, &files);
    std::vector<int> fillers;
    for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) fillers.push_back(fd);
    for (int k = 0; k < 7 && !fillers.empty(); ++k) {
      ::close(fillers.back());
      fillers.pop_back();
    }
    std::string message = "no error";
    errno = 0;
    try {
      forma::parallel::launch(o);
    } catch (const forma::Error& e) {
      message = e.what();
    }
    (void)!::write(report[1], message.data(), message.size());
    ::_exit(0);
  }
  ::close(report[1]);
  std::string message;
  char buf[512];
  for (ssize_t n; (n = ::read(report[0], buf, sizeof buf)) > 0;) message.append(buf, static_cast<size_t>(n));
  ::close(report[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  EXPECT_NE(message.find("cannot start worker 3 of 4"), std::string::npos) << message;
  EXPECT_NE(message.find(std::string("pipe: ") + std::strerror(EMFILE)), std::string::npos) << message;
  for (int rank : {0, 1}) {
    pid_t pid = wait_for_pid_file(dir + "/pid_" + std::to_string(rank));
    ASSERT_GT(pid, 0) << "worker " << rank << " never started";
    EXPECT_FALSE(process_exists(pid)) << "worker " << rank << " (pid " << pid << ") outlived the failed launch";
    if (process_exists(pid)) ::kill(pid, SIGKILL);
  }
  EXPECT_FALSE(std::filesystem::exists(dir + "/pid_2"));
}

// A start that fails with an injected errno (fork's EAGAIN) is named with that errno.
TEST(Launcher, FailedForkIsNamedWithItsErrno) {
  const std::string dir = forma::test::scratch_dir();
  forma::parallel::LaunchOptions o;
  o.nproc_per_node = 3;
  o.command = {"sh", "-c", "echo $$ > " + dir + "/pid_$LOCAL_RANK; exec sleep 60"};
  o.spawn_fault = [&](int local_rank) {
    if (local_rank == 0) return 0;
    wait_for_pid_file(dir + "/pid_0");
    return EAGAIN;
  };
  auto start = std::chrono::steady_clock::now();
  try {
    forma::parallel::launch(o);
    ADD_FAILURE() << "launch did not fail";
  } catch (const forma::Error& e) {
    std::string message = e.what();
    EXPECT_NE(message.find(std::string("fork: ") + std::strerror(EAGAIN)), std::string::npos) << message;
    EXPECT_NE(message.find("stopped the 1 worker"), std::string::npos) << message;
  }
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 10.0);
  pid_t pid = wait_for_pid_file(dir + "/pid_0");
  ASSERT_GT(pid, 0);
  EXPECT_FALSE(process_exists(pid));
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

#include "forma/parallel/launcher.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>

#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "forma/core/error.h"
#include "forma/core/log.h"

extern char** environ;

namespace forma::parallel {

namespace {

std::atomic<int> g_signal{0};
void on_signal(int sig) { g_signal = sig; }

struct Stream {
  int fd = -1;
  FILE* sink = nullptr;  // the launcher's stdout or stderr
  std::string pending;   // bytes after the last newline
};

struct Worker {
  int rank = 0;
  pid_t pid = -1;
  bool running = true;
  int status = 0;
  long peak_rss_kb = 0;  // of the worker and its waited-for descendants (wait4's rusage)
  Stream out, err;
  std::unique_ptr<std::ofstream> log;
};

std::string describe_status(int status) {
  if (WIFEXITED(status)) return fmt::format("exit status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return fmt::format("signal {} ({})", WTERMSIG(status), strsignal(WTERMSIG(status)));
  return "unknown status";
}

std::string self_executable() {
  std::error_code ec;
  auto path = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? "forma" : path.string();
}

// A worker's argv and environment (the launcher's, plus torchrun's variables), built before fork():
// the launcher runs the store's threads, so the child only wires pipes and execs.
struct WorkerCommand {
  std::vector<std::string> args, env;
  std::vector<char*> argv, envp;
};

void build_worker_command(const LaunchOptions& o, int local_rank, int port, WorkerCommand& c) {
  int rank = o.node_rank * o.nproc_per_node + local_rank;
  std::vector<std::pair<std::string, std::string>> vars = {
      {"RANK", std::to_string(rank)},
      {"WORLD_SIZE", std::to_string(o.nnodes * o.nproc_per_node)},
      {"LOCAL_RANK", std::to_string(local_rank)},
      {"LOCAL_WORLD_SIZE", std::to_string(o.nproc_per_node)},
      {"GROUP_RANK", std::to_string(o.node_rank)},
      {"MASTER_ADDR", o.master_addr},
      {"MASTER_PORT", std::to_string(port)},
      {"FORMA_LAUNCHED", "1"},
      {"FORMA_STORE_HOSTED", o.node_rank == 0 ? "1" : "0"}};
  for (char** e = environ; *e; ++e) {
    std::string entry = *e;
    std::string name = entry.substr(0, entry.find('='));
    bool replaced = false;
    for (const auto& v : vars) replaced |= v.first == name;
    if (!replaced) c.env.push_back(entry);
  }
  for (const auto& [name, value] : vars) c.env.push_back(name + "=" + value);
  c.args = o.command;
  if (c.args[0] == "forma") c.args[0] = self_executable();
  for (auto& a : c.args) c.argv.push_back(a.data());
  c.argv.push_back(nullptr);
  for (auto& e : c.env) c.envp.push_back(e.data());
  c.envp.push_back(nullptr);
}

// Child side of fork(): wire the pipes, exec the command.
[[noreturn]] void exec_worker(const WorkerCommand& c, int out_fd, int err_fd) {
  ::setpgid(0, 0);  // its own process group, so that the whole worker tree can be signalled
  ::dup2(out_fd, STDOUT_FILENO);
  ::dup2(err_fd, STDERR_FILENO);
  ::execvpe(c.argv[0], c.argv.data(), c.envp.data());
  std::fprintf(stderr, "cannot start %s: %s\n", c.argv[0], std::strerror(errno));
  std::_Exit(127);
}

void emit(Worker& w, Stream& s, const std::string& line) {
  std::string text = fmt::format("[rank {}] {}\n", w.rank, line);
  std::fputs(text.c_str(), s.sink);
  std::fflush(s.sink);
  if (w.log) *w.log << line << '\n' << std::flush;
}

// Reads what is available; returns false at end of stream.
bool drain(Worker& w, Stream& s) {
  char buf[4096];
  ssize_t n = ::read(s.fd, buf, sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
  if (n <= 0) {
    if (!s.pending.empty()) emit(w, s, s.pending);
    s.pending.clear();
    ::close(s.fd);
    s.fd = -1;
    return false;
  }
  s.pending.append(buf, static_cast<size_t>(n));
  size_t start = 0, nl;
  while ((nl = s.pending.find('\n', start)) != std::string::npos) {
    emit(w, s, s.pending.substr(start, nl - start));
    start = nl + 1;
  }
  s.pending.erase(0, start);
  return true;
}

void signal_all(std::vector<Worker>& workers, int sig) {
  for (auto& w : workers)
    if (w.running) ::kill(-w.pid, sig);
}

void validate(const LaunchOptions& o) {
  check(o.nproc_per_node >= 1, "--nproc-per-node must be at least 1, got {}", o.nproc_per_node);
  check(o.nproc_per_node <= kMaxProcPerNode, "--nproc-per-node {} is more than {}, the most workers forma launch starts on one node",
        o.nproc_per_node, kMaxProcPerNode);
  struct rlimit files {};
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur != RLIM_INFINITY) {
    const uint64_t needed = static_cast<uint64_t>(o.nproc_per_node) * kLauncherFdsPerWorker + kLauncherFdReserve;
    check(needed <= files.rlim_cur,
          "--nproc-per-node {} needs about {} open files in the launcher ({} per worker), more than its limit of {} (ulimit -n)",
          o.nproc_per_node, needed, kLauncherFdsPerWorker, static_cast<uint64_t>(files.rlim_cur));
  }
  check(o.nnodes >= 1, "--nnodes must be at least 1, got {}", o.nnodes);
  check(o.node_rank >= 0 && o.node_rank < o.nnodes, "--node-rank {} is not in [0, --nnodes={})", o.node_rank, o.nnodes);
  check(o.master_port >= -1 && o.master_port < 65536, "--master-port {} is not a port", o.master_port);
  check(o.master_port != 0 || o.nnodes == 1,
        "--master-port 0 (any free port) needs --nnodes 1: the other nodes must know the port");
  check(!o.command.empty(), "no command to launch: put it after --, e.g. forma launch --nproc-per-node 2 -- forma train ...");
}

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// Creates worker `local_rank`'s pipes and log and forks it. Returns 0, or the errno of the call
// that failed (captured right after it), with `what` naming the call; nothing is left open then.
int start_worker(const LaunchOptions& o, int local_rank, int port, Worker& w, std::string& what) {
  if (o.spawn_fault) {
    if (int injected = o.spawn_fault(local_rank)) {
      what = "fork";
      return injected;
    }
  }
  int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
  auto close_all = [&] {
    for (int* fd : {&out_pipe[0], &out_pipe[1], &err_pipe[0], &err_pipe[1]}) close_fd(*fd);
    w.log.reset();
  };
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) {
    int error = errno;
    what = "pipe";
    close_all();
    return error;
  }
  if (!o.log_dir.empty()) {
    std::string path = fmt::format("{}/rank_{}.log", o.log_dir, w.rank);
    errno = 0;
    w.log = std::make_unique<std::ofstream>(path);
    if (!w.log->is_open()) {
      int error = errno != 0 ? errno : EIO;
      what = "open " + path;
      close_all();
      return error;
    }
  }
  WorkerCommand command;
  build_worker_command(o, local_rank, port, command);
  pid_t pid = ::fork();
  if (pid < 0) {
    int error = errno;
    what = "fork";
    close_all();
    return error;
  }
  if (pid == 0) exec_worker(command, out_pipe[1], err_pipe[1]);
  w.pid = pid;
  ::setpgid(w.pid, w.pid);
  close_fd(out_pipe[1]);
  close_fd(err_pipe[1]);
  w.out = {out_pipe[0], stdout, {}};
  w.err = {err_pipe[0], stderr, {}};
  return 0;
}

// Stops the first `count` workers (SIGTERM to each one's process group, SIGKILL after `grace`
// seconds), reaps them and closes their pipes. Returns how many there were.
int stop_started(std::vector<Worker>& workers, size_t count, double grace) {
  for (size_t k = 0; k < count; ++k)
    if (workers[k].running) ::kill(-workers[k].pid, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(grace * 1000));
  for (bool waiting = true; waiting;) {
    waiting = false;
    for (size_t k = 0; k < count; ++k) {
      Worker& w = workers[k];
      if (w.running && ::waitpid(w.pid, &w.status, WNOHANG) == w.pid) w.running = false;
      waiting |= w.running;
    }
    if (!waiting) break;
    if (std::chrono::steady_clock::now() > deadline) {
      for (size_t k = 0; k < count; ++k) {
        Worker& w = workers[k];
        if (!w.running) continue;
        ::kill(-w.pid, SIGKILL);
        ::kill(w.pid, SIGKILL);
        while (::waitpid(w.pid, &w.status, 0) < 0 && errno == EINTR) {
        }
        w.running = false;
      }
      break;
    }
    ::usleep(20 * 1000);
  }
  for (size_t k = 0; k < count; ++k) {
    close_fd(workers[k].out.fd);
    close_fd(workers[k].err.fd);
  }
  return static_cast<int>(count);
}

// SIGINT and SIGTERM reach the launcher's flag while it runs; the previous handlers come back after.
class SignalForwarding {
 public:
  SignalForwarding() {
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    ::sigaction(SIGINT, &sa, &previous_int_);
    ::sigaction(SIGTERM, &sa, &previous_term_);
    g_signal = 0;
  }
  ~SignalForwarding() {
    ::sigaction(SIGINT, &previous_int_, nullptr);
    ::sigaction(SIGTERM, &previous_term_, nullptr);
  }

 private:
  struct sigaction previous_int_ {};
  struct sigaction previous_term_ {};
};

// Node 0's store (see launcher.h); `port` becomes the port it listens on.
c10::intrusive_ptr<c10d::TCPStore> host_store(int& port) {
  c10d::TCPStoreOptions opts;
  opts.port = static_cast<uint16_t>(port);
  opts.isServer = true;
  opts.waitWorkers = false;
  try {
    auto store = c10::make_intrusive<c10d::TCPStore>("127.0.0.1", opts);
    port = store->getPort();
    return store;
  } catch (const std::exception& e) {
    const auto* c10_error = dynamic_cast<const c10::Error*>(&e);
    fail("--master-port {}: the rendezvous store cannot listen on it (is another run using it? 0 picks a free "
         "port on one node): {}",
         port, c10_error ? c10_error->what_without_backtrace() : e.what());
  }
}

}  // namespace

int resolved_master_port(const LaunchOptions& o) {
  if (o.master_port >= 0) return o.master_port;
  return o.nnodes == 1 ? 0 : 29500;
}

int launch(const LaunchOptions& o) {
  validate(o);
  if (!o.log_dir.empty()) std::filesystem::create_directories(o.log_dir);
  int port = resolved_master_port(o);
  c10::intrusive_ptr<c10d::TCPStore> store;
  if (o.node_rank == 0) store = host_store(port);
  SignalForwarding forwarding;

  std::vector<Worker> workers(static_cast<size_t>(o.nproc_per_node));
  for (int i = 0; i < o.nproc_per_node; ++i) {
    Worker& w = workers[static_cast<size_t>(i)];
    w.rank = o.node_rank * o.nproc_per_node + i;
    std::string what;
    int error = start_worker(o, i, port, w, what);
    if (error != 0) {
      // Each errno is captured right at its failing call; stopping the others may change errno.
      int stopped = stop_started(workers, static_cast<size_t>(i), o.kill_grace_seconds);
      fail("cannot start worker {} of {} (rank {}): {}: {}; stopped the {} worker(s) already started", i + 1,
           o.nproc_per_node, w.rank, what, std::strerror(error), stopped);
    }
    if (int sig = g_signal.load()) {  // a signal while starting: stop, instead of starting the rest
      int stopped = stop_started(workers, static_cast<size_t>(i) + 1, o.kill_grace_seconds);
      log::error("launcher got signal {} while starting the workers: stopped the {} already started", sig, stopped);
      return 1;
    }
  }
  std::string pids;
  for (const auto& w : workers) pids += fmt::format("{}rank {} pid {}", pids.empty() ? "" : ", ", w.rank, w.pid);
  log::info("launched {} worker(s) on node {} of {} (world size {}, master {}:{}): {}", o.nproc_per_node,
            o.node_rank, o.nnodes, o.nnodes * o.nproc_per_node, o.master_addr, port, pids);

  const Worker* failed = nullptr;
  bool forwarded = false;
  std::chrono::steady_clock::time_point kill_deadline{};
  bool deadline_set = false;
  std::optional<std::chrono::steady_clock::time_point> all_exited_at;
  for (;;) {
    std::vector<pollfd> fds;
    std::vector<std::pair<Worker*, Stream*>> owners;
    for (auto& w : workers)
      for (Stream* s : {&w.out, &w.err})
        if (s->fd >= 0) {
          fds.push_back({s->fd, POLLIN, 0});
          owners.emplace_back(&w, s);
        }
    if (!fds.empty()) {
      int n = ::poll(fds.data(), fds.size(), 100);
      for (size_t k = 0; n > 0 && k < fds.size(); ++k)
        if (fds[k].revents) drain(*owners[k].first, *owners[k].second);
    } else {
      ::usleep(50 * 1000);
    }
    bool any_running = false;
    for (auto& w : workers) {
      struct rusage usage {};
      if (w.running && ::wait4(w.pid, &w.status, WNOHANG, &usage) == w.pid) {
        w.running = false;
        w.peak_rss_kb = usage.ru_maxrss;
        bool ok = WIFEXITED(w.status) && WEXITSTATUS(w.status) == 0;
        if (!ok && !failed && !forwarded) {
          failed = &w;
          log::error("rank {} (pid {}) failed with {}: stopping the other workers", w.rank, w.pid,
                     describe_status(w.status));
          signal_all(workers, SIGTERM);
          kill_deadline = std::chrono::steady_clock::now() +
                          std::chrono::milliseconds(static_cast<int64_t>(o.kill_grace_seconds * 1000));
          deadline_set = true;
        }
      }
      any_running |= w.running;
    }
    if (int sig = g_signal.exchange(0)) {
      if (!forwarded) {
        log::warn("launcher got signal {}: forwarding it to the workers (again to kill them)", sig);
        signal_all(workers, sig);
        forwarded = true;
      } else {
        signal_all(workers, SIGKILL);
      }
    }
    if (deadline_set && std::chrono::steady_clock::now() > kill_deadline) {
      signal_all(workers, SIGKILL);
      deadline_set = false;
    }
    bool streams_open = false;
    for (auto& w : workers) streams_open |= (w.out.fd >= 0 || w.err.fd >= 0);
    if (!any_running) {
      // Output still in the pipes is read for a moment; a worker's leftover children that keep a
      // pipe open must not keep the launcher alive.
      if (!streams_open) break;
      auto now = std::chrono::steady_clock::now();
      if (!all_exited_at) all_exited_at = now;
      if (now - *all_exited_at > std::chrono::seconds(2)) break;
    }
  }
  // Per-rank memory is what a parallel layout (ZeRO, tensor parallel) is chosen for: report it.
  std::string memory;
  for (const auto& w : workers) {
    memory += fmt::format("{}rank {} {:.3f} GB", memory.empty() ? "" : ", ", w.rank, w.peak_rss_kb / 1048576.0);
  }
  log::info("peak resident memory per worker: {}", memory);
  if (failed) {
    log::error("run failed: rank {} exited with {}", failed->rank, describe_status(failed->status));
    return 1;
  }
  for (auto& w : workers) {
    if (!(WIFEXITED(w.status) && WEXITSTATUS(w.status) == 0)) {
      log::error("rank {} exited with {}", w.rank, describe_status(w.status));
      return 1;
    }
  }
  return 0;
}

}  // namespace forma::parallel

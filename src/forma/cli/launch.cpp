// forma launch: torchrun's flags and environment; see parallel/launcher.h.
#include "forma/cli/command.h"
#include "forma/parallel/launcher.h"

// A named namespace (not an anonymous one): unity builds compile the commands in one unit.
namespace forma::cli::launch_command {

forma::cli::CommandRegistration reg(90, [](CLI::App& app) {
  auto opts = std::make_shared<forma::parallel::LaunchOptions>();
  auto* cmd = app.add_subcommand("launch", "Start the workers of a distributed run on this node (torchrun-compatible)");
  cmd->add_option("--nproc-per-node", opts->nproc_per_node, "workers on this node")->capture_default_str();
  cmd->add_option("--nnodes", opts->nnodes, "number of nodes")->capture_default_str();
  cmd->add_option("--node-rank", opts->node_rank, "rank of this node, 0 .. nnodes-1")->capture_default_str();
  cmd->add_option("--master-addr", opts->master_addr, "address of node 0 (the TCPStore host)")->capture_default_str();
  cmd->add_option("--master-port", opts->master_port,
                  "port of the rendezvous store on node 0 (default: any free port on one node, 29500 with --nnodes > 1; "
                  "0: any free port)");
  cmd->add_option("--log-dir", opts->log_dir, "write each worker's output to DIR/rank_<R>.log too");
  cmd->add_option("--kill-grace", opts->kill_grace_seconds,
                  "seconds between SIGTERM and SIGKILL when a worker failed")->capture_default_str();
  cmd->add_option("command", opts->command, "the worker command, after --; 'forma' means this binary")->required();
  cmd->footer("Example: forma launch --nproc-per-node 2 -- forma train --config configs/recipes/tiny-test.yaml");
  cmd->callback([opts] {
    int rc = forma::parallel::launch(*opts);
    if (rc != 0) std::exit(rc);
  });
});

}  // namespace forma::cli::launch_command

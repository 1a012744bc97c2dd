// `forma ckpt info|merge|reshard`: inspect a training checkpoint, turn it into one Hugging Face
// model folder, or lay it out for another parallel layout offline (train/checkpoint_convert.h).
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "forma/cli/command.h"
#include "forma/core/error.h"
#include "forma/train/checkpoint.h"
#include "forma/train/checkpoint_convert.h"
#include "forma/train/checkpoint_dir.h"
#include "forma/train/checkpoint_slices.h"
#include "forma/train/dist_checkpoint_reader.h"

// A named namespace (not an anonymous one): unity builds compile the commands in one unit.
namespace forma::cli::ckpt_command {

namespace fs = std::filesystem;

struct CkptArgs {
  std::string dir, to;
  std::vector<std::string> sets;
  bool json = false;
};

// A step folder, or a checkpoints folder (its `latest`).
std::string checkpoint_folder(const std::string& dir) {
  check(fs::is_directory(dir), "{}: not a folder", dir);
  if (!fs::exists(fs::path(dir) / train::kCheckpointMetadataFile) && fs::exists(fs::path(dir) / "latest")) {
    return (fs::path(dir) / "latest").string();
  }
  return dir;
}

std::string human_bytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) value /= 1024, ++unit;
  return unit == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", value, units[unit]);
}

void print_info_text(const std::string& dir, const std::string& not_committed, const train::CheckpointMetadata& m,
                     const nlohmann::json& tensors, size_t files, size_t optimizer_tensors, uint64_t model_bytes,
                     uint64_t optimizer_bytes) {
  const auto& l = m.layout;
  std::printf("checkpoint  %s\n", dir.c_str());
  std::printf("committed   %s\n", not_committed.empty() ? "yes (manifest verified)" : ("NO: " + not_committed).c_str());
  std::printf("step        %lld\n", static_cast<long long>(m.step));
  std::printf("layout      %d processes: data_parallel %d x tensor_parallel %d (pipeline %d, context %d), "
              "sequence_parallel %s, zero_stage %d\n",
              l.world_size, l.data_parallel, l.tensor_parallel, l.pipeline_parallel, l.context_parallel,
              l.sequence_parallel ? "true" : "false", l.zero_stage);
  std::printf("tensors     %zu: model %zu (%s), optimizer %zu (%s), in %zu shard file(s)\n", m.tensors.size(),
              m.tensors.size() - optimizer_tensors, human_bytes(model_bytes).c_str(), optimizer_tensors,
              human_bytes(optimizer_bytes).c_str(), files);
  for (const auto& t : tensors) {
    const std::string shape = train::shape_text(t["shape"].get<std::vector<int64_t>>());
    std::printf("  %-60s %-4s %-14s %2zu piece(s) %12s\n", t["name"].get<std::string>().c_str(),
                t["dtype"].get<std::string>().c_str(), shape.c_str(), t["pieces"].get<size_t>(),
                human_bytes(t["bytes"].get<uint64_t>()).c_str());
  }
}

void run_info(const CkptArgs& args) {
  const std::string dir = checkpoint_folder(args.dir);
  std::string not_committed;  // why, when the manifest does not verify
  try {
    train::verify_checkpoint(dir, train::required_checkpoint_files());
  } catch (const Error& e) {
    not_committed = e.what();
  }
  train::DistCheckpointReader reader(dir, /*verify=*/false);
  const auto& m = reader.metadata();
  const auto& l = m.layout;
  uint64_t model_bytes = 0, optimizer_bytes = 0;
  size_t optimizer_tensors = 0;
  std::set<std::string> files;
  nlohmann::json tensors = nlohmann::json::array();
  for (const auto& [name, entry] : m.tensors) {
    const bool optimizer = name.rfind(train::kOptimizerPrefix, 0) == 0;
    (optimizer ? optimizer_bytes : model_bytes) += entry.nbytes();
    optimizer_tensors += optimizer ? 1 : 0;
    for (const auto& piece : entry.pieces) files.insert(piece.file);
    tensors.push_back({{"name", name}, {"dtype", dtype_name(entry.dtype)}, {"shape", entry.shape},
                       {"pieces", entry.pieces.size()}, {"bytes", entry.nbytes()}});
  }
  if (args.json) {
    nlohmann::json out = {{"dir", dir},
                          {"committed", not_committed.empty()},
                          {"step", m.step},
                          {"layout",
                           {{"world_size", l.world_size}, {"data_parallel", l.data_parallel},
                            {"tensor_parallel", l.tensor_parallel}, {"pipeline_parallel", l.pipeline_parallel},
                            {"context_parallel", l.context_parallel}, {"sequence_parallel", l.sequence_parallel},
                            {"zero_stage", l.zero_stage}}},
                          {"model_bytes", model_bytes},
                          {"optimizer_bytes", optimizer_bytes},
                          {"shard_files", files.size()},
                          {"tensors", tensors}};
    if (!not_committed.empty()) out["not_committed_because"] = not_committed;
    std::printf("%s\n", out.dump().c_str());
  } else {
    print_info_text(dir, not_committed, m, tensors, files.size(), optimizer_tensors, model_bytes, optimizer_bytes);
  }
  // What could be read is printed; the status says whether the checkpoint may be used.
  check(not_committed.empty(), "the checkpoint is not committed: {}", not_committed);
}

void run_merge(const CkptArgs& args) {
  const std::string dir = checkpoint_folder(args.dir);
  size_t params = train::merge_checkpoint(dir, args.to);
  std::printf("wrote %s: %zu parameters from %s as a Hugging Face model folder\n", args.to.c_str(), params,
              dir.c_str());
}

// --set parallel.KEY=VALUE over the source checkpoint's layout.
train::CheckpointLayout target_layout(const train::CheckpointLayout& source, const std::vector<std::string>& sets) {
  train::CheckpointLayout layout = source;
  for (const auto& set : sets) {
    auto eq = set.find('=');
    check(eq != std::string::npos, "--set {}: expected parallel.KEY=VALUE", set);
    const std::string key = set.substr(0, eq), value = set.substr(eq + 1);
    auto number = [&](int low) {
      int v = 0;
      size_t used = 0;
      try {
        v = std::stoi(value, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      check(used == value.size() && !value.empty() && v >= low, "--set {}: '{}' is not an integer >= {}", set, value,
            low);
      return v;
    };
    if (key == "parallel.tensor_parallel") {
      layout.tensor_parallel = number(1);
    } else if (key == "parallel.data_parallel") {
      layout.data_parallel = number(1);
    } else if (key == "parallel.zero_stage") {
      layout.zero_stage = number(0);
      check(layout.zero_stage <= 1, "--set {}: zero_stage is 0 or 1", set);
    } else if (key == "parallel.sequence_parallel") {
      check(value == "true" || value == "false", "--set {}: '{}' is not true or false", set, value);
      layout.sequence_parallel = value == "true";
    } else {
      fail("--set {}: unknown key '{}' (parallel.tensor_parallel, parallel.data_parallel, parallel.sequence_parallel "
           "or parallel.zero_stage)", set, key);
    }
  }
  layout.pipeline_parallel = layout.context_parallel = 1;
  layout.world_size = layout.data_parallel * layout.tensor_parallel;
  if (layout.tensor_parallel == 1) layout.sequence_parallel = false;  // it needs tensor parallelism
  return layout;
}

void run_reshard(const CkptArgs& args) {
  const std::string dir = checkpoint_folder(args.dir);
  train::CheckpointLayout source = train::DistCheckpointReader(dir, /*verify=*/false).metadata().layout;
  train::CheckpointLayout layout = target_layout(source, args.sets);
  train::reshard_checkpoint(dir, args.to, layout);
  std::printf("wrote %s: tensor_parallel %d -> %d, data_parallel %d -> %d (%d processes)\n", args.to.c_str(),
              source.tensor_parallel, layout.tensor_parallel, source.data_parallel, layout.data_parallel,
              layout.world_size);
}

CommandRegistration reg(25, [](CLI::App& app) {
  auto* ckpt = app.add_subcommand("ckpt", "inspect, merge and reshard training checkpoints");
  ckpt->require_subcommand(1);

  auto info_args = std::make_shared<CkptArgs>();
  auto* info = ckpt->add_subcommand(
      "info", "layout, step, tensors (global shapes, dtypes, pieces, sizes), committed or not (exit status 1 when not)");
  info->add_option("dir", info_args->dir, "checkpoint folder (step-NNNNNNN), or a checkpoints folder (its latest)")
      ->required();
  info->add_flag("--json", info_args->json, "one JSON object instead of text");
  info->callback([info_args] { run_info(*info_args); });

  auto merge_args = std::make_shared<CkptArgs>();
  auto* merge = ckpt->add_subcommand("merge", "write a checkpoint as one Hugging Face model folder");
  merge->add_option("dir", merge_args->dir, "checkpoint folder, or a checkpoints folder (its latest)")->required();
  merge->add_option("--to", merge_args->to, "Hugging Face model folder to write (must not exist, or be empty)")
      ->required();
  merge->callback([merge_args] { run_merge(*merge_args); });

  auto reshard_args = std::make_shared<CkptArgs>();
  auto* reshard =
      ckpt->add_subcommand("reshard", "rewrite a checkpoint as another parallel layout would have written it");
  reshard->add_option("dir", reshard_args->dir, "checkpoint folder, or a checkpoints folder (its latest)")->required();
  reshard->add_option("--to", reshard_args->to, "checkpoint folder to write (must not exist, or be empty)")->required();
  reshard->add_option("--set", reshard_args->sets,
                      "parallel.tensor_parallel=N, parallel.data_parallel=M, parallel.sequence_parallel=true|false, "
                      "parallel.zero_stage=0|1 (repeatable; the rest as the source checkpoint)")
      ->required();
  reshard->callback([reshard_args] { run_reshard(*reshard_args); });
});

}  // namespace forma::cli::ckpt_command

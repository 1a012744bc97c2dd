// `forma convert --from DIR --to DIR [--dtype bf16|f16|f32] [--shard-size 5GB]`: rewrites a
// Hugging Face model folder in HF's layout with another dtype and/or sharding (model/hf_convert.h).
#include <cstdio>
#include <memory>
#include <string>

#include "forma/cli/command.h"
#include "forma/core/error.h"
#include "forma/model/hf_convert.h"

// A named namespace (not an anonymous one): unity builds compile the commands in one unit.
namespace forma::cli::convert_command {

struct ConvertArgs {
  std::string from, to, dtype, shard_size = "5GB";
};

void run_convert(const ConvertArgs& args) {
  ConvertOptions options;
  if (!args.dtype.empty()) options.dtype = parse_float_dtype(args.dtype, "--dtype");
  options.max_shard_bytes = parse_byte_size(args.shard_size, "--shard-size");
  ConvertResult result = convert_hf_folder(args.from, args.to, options);
  std::printf("wrote %s: %zu tensors, %llu bytes (%s) in %zu file(s); copied %zu other file(s)\n",
              args.to.c_str(), result.tensors, static_cast<unsigned long long>(result.total_bytes),
              options.dtype ? torch_dtype_name(*options.dtype) : "dtypes kept", result.weight_files.size(),
              result.copied_files.size());
}

CommandRegistration reg(35, [](CLI::App& app) {
  auto* cmd = app.add_subcommand("convert", "rewrite a Hugging Face model folder in another dtype or sharding");
  auto args = std::make_shared<ConvertArgs>();
  cmd->add_option("--from", args->from, "source Hugging Face model folder")->required();
  cmd->add_option("--to", args->to, "folder to write (must not exist, or be empty)")->required();
  cmd->add_option("--dtype", args->dtype, "bf16, f16 or f32 for the floating tensors (default: keep)");
  cmd->add_option("--shard-size", args->shard_size,
                  "largest weight file, as HF's max_shard_size: 2GB, 500MB, 1GiB, bytes (default 5GB)");
  cmd->callback([args] { run_convert(*args); });
});

}  // namespace forma::cli::convert_command

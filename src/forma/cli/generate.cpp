// `forma generate`: text generation from a Hugging Face model folder. Defaults come from the
// folder's generation_config.json (else greedy, EOS from config.json or the tokenizer); flags
// override them. Text streams to stdout as it is generated; --json prints one object at the end.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "forma/cli/command.h"
#include "forma/cli/generation_flags.h"
#include "forma/core/error.h"
#include "forma/core/log.h"
#include "forma/infer/generate.h"
#include "forma/infer/generation_defaults.h"
#include "forma/model/hf_io.h"
#include "forma/tokenizer/tokenizer.h"

// A named namespace (not an anonymous one): unity builds compile the commands in one unit.
namespace forma::cli::generate_command {

namespace fs = std::filesystem;

struct GenerateArgs {
  std::string model_dir;
  std::string prompt;
  std::string prompt_ids;
  bool no_cache = false;
  bool json = false;
  GenerationFlags flags;
};

// "1, 2,3" -> {1, 2, 3}; errors name the offending item.
std::vector<int32_t> parse_ids(const std::string& text) {
  std::vector<int32_t> ids;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) {
    size_t used = 0;
    long long value = -1;
    try {
      value = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    while (used < item.size() && item[used] == ' ') ++used;
    check(used == item.size() && !item.empty() && value >= 0 && value <= INT32_MAX,
          "--prompt-ids: \"{}\" is not a token id (expected e.g. 1,2,3)", item);
    ids.push_back(static_cast<int32_t>(value));
  }
  check(!ids.empty(), "--prompt-ids: no ids given");
  return ids;
}

void run_generate(const GenerateArgs& args) {
  check(fs::is_directory(args.model_dir), "--model: {} is not a folder", args.model_dir);
  check(args.prompt.empty() != args.prompt_ids.empty(), "give exactly one of --prompt and --prompt-ids");
  std::unique_ptr<tok::Tokenizer> tokenizer;
  if (has_tokenizer_files(args.model_dir)) tokenizer = tok::load_tokenizer(args.model_dir);
  check(tokenizer || args.prompt.empty(),
        "--prompt: {} has no tokenizer (tokenizer.json, tokenizer.model, encoder.json + vocab.bpe or "
        "*.tiktoken); use --prompt-ids",
        args.model_dir);

  CausalLM model = load_pretrained(args.model_dir);
  auto config = infer::load_generation_defaults(args.model_dir, model->config(), tokenizer.get());
  config.use_cache = !args.no_cache;
  args.flags.apply(&config);
  // HF's tokenizer(prompt) adds the special tokens of its post-processor (Llama's BOS) by default.
  const std::vector<int32_t> prompt =
      args.prompt.empty() ? parse_ids(args.prompt_ids) : tokenizer->encode(args.prompt, true);

  infer::GenerationCallbacks callbacks;
  if (!args.json && tokenizer) {
    callbacks.on_text = write_stdout;
  } else if (!args.json) {
    // No tokenizer: stream the ids themselves.
    callbacks.on_token = [](int32_t id, const torch::Tensor&) { write_stdout(std::to_string(id) + " "); };
  }
  auto result = infer::generate(model, prompt, config, tokenizer.get(), callbacks);
  if (args.json) {
    nlohmann::json out = {{"prompt_ids", prompt},
                          {"output_ids", result.ids},
                          {"text", result.text},
                          {"stop_reason", infer::stop_reason_name(result.stop_reason)}};
    // Text cut inside a character is not valid UTF-8: replace such bytes rather than fail.
    write_stdout(out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  } else {
    write_stdout("\n");
  }
  log::info("generate: {} prompt tokens, {} new tokens, stopped by {}", prompt.size(),
            result.ids.size(), infer::stop_reason_name(result.stop_reason));
}

CommandRegistration reg(40, [](CLI::App& app) {
  auto* cmd = app.add_subcommand("generate", "generate text with a model (streamed to stdout)");
  auto args = std::make_shared<GenerateArgs>();
  cmd->add_option("--model", args->model_dir, "Hugging Face model folder (config.json, weights, tokenizer)")
      ->required();
  cmd->add_option("--prompt", args->prompt, "prompt text (encoded with the folder's tokenizer)");
  cmd->add_option("--prompt-ids", args->prompt_ids, "prompt as token ids, e.g. 1,2,3");
  args->flags.add_to(cmd);
  cmd->add_flag("--no-cache", args->no_cache, "rerun the whole sequence for every token (no KV cache)");
  cmd->add_flag("--json", args->json, "print one JSON object (prompt_ids, output_ids, text, stop_reason)");
  cmd->callback([args] { run_generate(*args); });
});

}  // namespace forma::cli::generate_command

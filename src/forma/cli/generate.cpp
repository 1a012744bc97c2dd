// `forma generate`: text generation from a Hugging Face model folder. Defaults come from the
// folder's generation_config.json (else greedy, EOS from config.json or the tokenizer); flags
// override them. Text streams to stdout as it is generated; --json prints one object at the end.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "forma/cli/command.h"
#include "forma/cli/generation_flags.h"
#include "forma/core/error.h"
#include "forma/core/log.h"
#include "forma/cli/model_inputs.h"
#include "forma/core/progress.h"
#include "forma/infer/batch_generate.h"
#include "forma/infer/generate.h"
#include "forma/infer/generation_defaults.h"
#include "forma/infer/prompts_file.h"
#include "forma/model/hf_io.h"
#include "forma/tokenizer/tokenizer.h"

// A named namespace (not an anonymous one): unity builds compile the commands in one unit.
namespace forma::cli::generate_command {

namespace fs = std::filesystem;

struct GenerateArgs {
  std::string model_dir;
  std::string prompt;
  std::string prompt_ids;
  std::string prompts_file;
  int64_t max_batch = 32;
  std::string dtype = "fp32";
  std::string adapter;  // --adapter: a PEFT LoRA folder
  std::string device = "auto";
  int threads = 0;
  bool no_cache = false;
  bool json = false;
  GenerationFlags flags;
};

// --prompts-file: every line of the file as one request, run in batches; one JSON line per prompt,
// in the file's order.
void run_prompts_file(const GenerateArgs& args, const std::vector<infer::PromptLine>& prompts,
                      CausalLM& model, const tok::Tokenizer* tokenizer) {
  std::vector<infer::BatchRequest> requests;
  int64_t budget = 0;
  for (const auto& prompt : prompts) {
    requests.push_back(prompt.request);
    budget += prompt.request.config.max_new_tokens;
  }
  Progress progress("generate", budget, "tok");
  for (auto& request : requests) {
    request.callbacks.on_token = [&progress](int32_t, const torch::Tensor&) { progress.advance(); };
  }
  infer::BatchTimings timings;
  auto results = infer::generate_batches(model, requests, args.max_batch, tokenizer, &timings);
  progress.finish();
  for (size_t i = 0; i < results.size(); ++i) {
    // Text cut inside a character is not valid UTF-8: replace such bytes rather than fail.
    write_stdout(infer::prompt_result_json(prompts[i], i, results[i])
                     .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) +
                 "\n");
  }
  const double seconds = timings.prefill_seconds + timings.decode_seconds;
  log::info("generate: {} prompts in batches of at most {}: {} prompt tokens in {:.2f} s, {} new tokens in "
            "{:.2f} s ({:.1f} tokens/s overall)",
            prompts.size(), args.max_batch, timings.prompt_tokens, timings.prefill_seconds,
            timings.generated_tokens, timings.decode_seconds,
            seconds > 0 ? timings.generated_tokens / seconds : 0.0);
}

void run_generate(const GenerateArgs& args) {
  apply_threads(args.threads);
  check(fs::is_directory(args.model_dir), "--model: {} is not a folder", args.model_dir);
  const bool batch = !args.prompts_file.empty();
  if (batch) {
    check(args.prompt.empty() && args.prompt_ids.empty(), "--prompts-file replaces --prompt and --prompt-ids");
    check(!args.no_cache, "--no-cache does not apply to --prompts-file (batches always use the KV cache)");
    check(args.max_batch >= 1, "--max-batch must be >= 1, got {}", args.max_batch);
  }
  std::unique_ptr<tok::Tokenizer> tokenizer = load_folder_tokenizer(args.model_dir);
  // The prompts are read before the weights, which may take long to load.
  const ModelConfig model_config = load_model_config(args.model_dir);
  const LoadOptions load_options{parse_compute_dtype(args.dtype, model_config, "--dtype"), device_from_flag(args.device)};
  auto config = infer::load_generation_defaults(args.model_dir, model_config, tokenizer.get());
  config.use_cache = !args.no_cache;
  args.flags.apply(&config);
  std::vector<int32_t> prompt;
  std::vector<infer::PromptLine> prompts;
  if (batch) {
    prompts = infer::read_prompts_file(args.prompts_file, config, tokenizer.get(), model_config.vocab_size);
  } else {
    prompt = prompt_from_flags(args.prompt, args.prompt_ids, tokenizer.get(), args.model_dir);
  }

  CausalLM model = load_pretrained(args.model_dir, load_options);

  apply_adapter(model, args.adapter);
  if (batch) return run_prompts_file(args, prompts, model, tokenizer.get());

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
  cmd->add_option("--prompts-file", args->prompts_file,
                  "JSON lines, one prompt per line ({\"prompt\": ...} or {\"prompt_ids\": [...]}, optional "
                  "per-line settings); run as batches, one JSON line out per prompt")
      ->check(CLI::ExistingFile);
  cmd->add_option("--max-batch", args->max_batch, "most prompts of --prompts-file in one batch (default 32)");
  args->flags.add_to(cmd);
  add_adapter_option(cmd, &args->adapter);
  add_dtype_option(cmd, &args->dtype);
  add_device_option(cmd, &args->device);
  add_threads_option(cmd, &args->threads);
  cmd->add_flag("--no-cache", args->no_cache, "rerun the whole sequence for every token (no KV cache)");
  cmd->add_flag("--json", args->json, "print one JSON object (prompt_ids, output_ids, text, stop_reason)");
  cmd->callback([args] { run_generate(*args); });
});

}  // namespace forma::cli::generate_command

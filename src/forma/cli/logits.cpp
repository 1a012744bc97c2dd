// `forma logits --model DIR (--prompt TEXT | --prompt-ids 1,2,3) --out FILE.safetensors [--dtype bf16]`:
// the logits of every position of one forward pass, for checking a conversion against another
// implementation (e.g. HF's model(input_ids).logits[0]). Written in fp32 whatever --dtype computes in.
#include <filesystem>
#include <memory>

#include "forma/cli/command.h"
#include "forma/cli/model_inputs.h"
#include "forma/core/error.h"
#include "forma/core/files.h"
#include "forma/core/log.h"
#include "forma/infer/generate.h"
#include "forma/model/hf_io.h"
#include "forma/model/tensor_io.h"

// A named namespace (not an anonymous one): unity builds compile the commands in one unit.
namespace forma::cli::logits_command {

struct LogitsArgs {
  std::string model_dir;
  std::string prompt;
  std::string prompt_ids;
  std::string out;
  std::string dtype = "fp32";
  std::string adapter;  // --adapter: a PEFT LoRA folder
  std::string device = "auto";
  int threads = 0;
};

void run_logits(const LogitsArgs& args) {
  apply_threads(args.threads);
  check(std::filesystem::is_directory(args.model_dir), "--model: {} is not a folder", args.model_dir);
  std::vector<std::string> model_files;  // --out must not replace one of them (its weights, say)
  for (const auto& entry : std::filesystem::directory_iterator(args.model_dir)) model_files.push_back(entry.path());
  check_output_is_not_input(args.out, model_files, "--out");
  auto tokenizer = load_folder_tokenizer(args.model_dir);
  const std::vector<int32_t> ids = prompt_from_flags(args.prompt, args.prompt_ids, tokenizer.get(), args.model_dir);
  const ModelConfig model_config = load_model_config(args.model_dir);
  const LoadOptions load_options{parse_compute_dtype(args.dtype, model_config, "--dtype"), device_from_flag(args.device)};
  for (size_t i = 0; i < ids.size(); ++i) {
    check(ids[i] < model_config.vocab_size, "prompt token {} (position {}) is outside the model's vocabulary [0, {})",
          ids[i], i, model_config.vocab_size);
  }
  const auto length = static_cast<int64_t>(ids.size());
  check(model_config.max_position_embeddings <= 0 || length <= model_config.max_position_embeddings,
        "the prompt has {} tokens, more than the model's context (max_position_embeddings) {}", length,
        model_config.max_position_embeddings);

  CausalLM model = load_pretrained(args.model_dir, load_options);

  apply_adapter(model, args.adapter);
  torch::NoGradGuard no_grad;
  infer::EvalModeGuard eval_mode(model);
  torch::Tensor input_ids = torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kLong);
  torch::Tensor logits =
      model->forward(input_ids.unsqueeze(0).to(load_options.device)).select(0, 0).cpu();  // [T, V] fp32 in any dtype
  save_tensors(args.out, {{"logits", logits}, {"input_ids", input_ids}},
               {{"format", "pt"}, {"model", args.model_dir}});
  log::info("logits: wrote {} (logits [{}, {}] fp32 from a {} model, input_ids [{}])", args.out, logits.size(0),
            logits.size(1), compute_dtype_name(model->dtype()), length);
}

CommandRegistration reg(45, [](CLI::App& app) {
  auto* cmd = app.add_subcommand("logits", "write the logits of every position of a prompt (safetensors)");
  auto args = std::make_shared<LogitsArgs>();
  cmd->add_option("--model", args->model_dir, "Hugging Face model folder")->required();
  cmd->add_option("--prompt", args->prompt, "prompt text (needs a tokenizer in the folder; special tokens added)");
  cmd->add_option("--prompt-ids", args->prompt_ids, "prompt as token ids, e.g. 1,2,3");
  cmd->add_option("--out", args->out, "output .safetensors file: \"logits\" [T, V] fp32, \"input_ids\" [T] int64")
      ->required();
  add_device_option(cmd, &args->device);
  add_threads_option(cmd, &args->threads);
  add_adapter_option(cmd, &args->adapter);
  auto* dtype = add_dtype_option(cmd, &args->dtype);
  dtype->description(dtype->get_description() + ". The logits are written in fp32 either way");
  cmd->callback([args] { run_logits(*args); });
});

}  // namespace forma::cli::logits_command

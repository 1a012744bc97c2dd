// forma eval: perplexity, multiple-choice and exact-match tasks (lm-evaluation-harness scoring),
// a readable table on stdout and, with --out, a JSON report.
#include <nlohmann/json.hpp>

#include <filesystem>

#include "forma/cli/command.h"
#include "forma/cli/model_inputs.h"
#include "forma/core/error.h"
#include "forma/core/files.h"
#include "forma/core/progress.h"
#include "forma/eval/choice_tasks.h"
#include "forma/eval/perplexity.h"
#include "forma/eval/task_file.h"
#include "forma/infer/generate.h"
#include "forma/model/hf_io.h"

// A named namespace (not an anonymous one): unity builds compile the commands in one unit.
namespace forma::cli::eval_command {

struct EvalOptions {
  std::string model, task, data, out;
  std::string dtype = "fp32";
  std::string adapter;  // --adapter: a PEFT LoRA folder
  std::string device = "auto";
  int threads = 0;
  int64_t limit = 0, max_length = 0, stride = 0, max_new_tokens = 32;
  std::vector<std::string> stop = {"\n"};
};

forma::eval::TaskScore run_perplexity(forma::eval::Scorer& scorer, const forma::tok::Tokenizer& tok,
                                      const EvalOptions& o) {
  // One document per file; a JSON-lines file gives one document per line's "text".
  forma::eval::PerplexityResult total;
  forma::eval::PerplexityOptions popts{o.max_length, o.stride};
  if (o.data.size() > 6 && o.data.substr(o.data.size() - 6) == ".jsonl") {
    forma::Progress progress("perplexity", o.limit, "documents");
    forma::eval::for_each_task_line(o.data, o.limit, [&](const forma::eval::TaskLine& line) {
      total.add(forma::eval::document_perplexity(scorer, tok, line.string_field("text"), popts));
      progress.advance();
    });
    progress.finish();
  } else {
    total = forma::eval::document_perplexity(scorer, tok, forma::read_file(o.data), popts);
  }
  forma::check(total.tokens > 0, "{}: no text to score", o.data);
  return {"perplexity", total.documents,
          {{"token_perplexity", total.token_perplexity()},
           {"word_perplexity", total.word_perplexity()},
           {"byte_perplexity", total.byte_perplexity()},
           {"bits_per_byte", total.bits_per_byte()},
           {"tokens", static_cast<double>(total.tokens)}}};
}

void run_eval(const EvalOptions& o) {
  forma::cli::apply_threads(o.threads);
  if (!o.out.empty()) {  // the report must not replace what the evaluation reads
    std::vector<std::string> read{o.data};
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(o.model, ec)) read.push_back(entry.path());
    forma::check_output_is_not_input(o.out, read, "--out");
  }
  const forma::ModelConfig config = forma::load_model_config(o.model);
  forma::check(o.max_length <= config.max_position_embeddings,
               "--max-length: {} exceeds the model's context ({} positions: max_position_embeddings in {})",
               o.max_length, config.max_position_embeddings, config.source);
  const forma::LoadOptions load_options{forma::parse_compute_dtype(o.dtype, config, "--dtype"),
                                        forma::cli::device_from_flag(o.device)};
  auto model = forma::load_pretrained(o.model, load_options);
  forma::cli::apply_adapter(model, o.adapter);
  model->eval();
  auto tokenizer = forma::cli::load_folder_tokenizer(o.model);
  forma::check(tokenizer != nullptr, "--model: {} has no tokenizer (tokenizer.json, tokenizer.model, encoder.json + "
               "vocab.bpe or *.tiktoken)", o.model);
  forma::eval::ModelScorer scorer(*model);
  forma::eval::TaskScore score;
  if (o.task == "perplexity") {
    score = run_perplexity(scorer, *tokenizer, o);
  } else if (o.task == "multiple_choice") {
    score = forma::eval::run_multiple_choice(scorer, *tokenizer, o.data, o.limit);
  } else if (o.task == "exact_match") {
    forma::infer::GenerationConfig gen;
    gen.max_new_tokens = o.max_new_tokens;
    gen.stop_strings = o.stop;
    if (auto eos = tokenizer->eos_id()) gen.eos_ids = {*eos};
    score = forma::eval::run_exact_match([&](const std::string& prompt) {
      auto ids = tokenizer->encode(prompt, true);
      return forma::infer::generate(model, ids, gen, tokenizer.get()).text;
    }, o.data, o.limit);
  } else {
    forma::fail("--task {}: expected perplexity, multiple_choice or exact_match", o.task);
  }
  fmt::print("| task | metric | value | examples |\n|---|---|---|---|\n");
  nlohmann::json metrics = nlohmann::json::object();
  for (auto& [name, value] : score.metrics) {
    fmt::print("| {} | {} | {:.6g} | {} |\n", score.task, name, value, score.examples);
    metrics[name] = value;
  }
  if (!o.out.empty()) {
    nlohmann::json report = {{"model", o.model}, {"task", score.task}, {"data", o.data},
                             {"examples", score.examples}, {"metrics", metrics}};
    forma::write_file_atomic(o.out, report.dump(2) + "\n");
  }
}

forma::cli::CommandRegistration reg(60, [](CLI::App& app) {
  auto o = std::make_shared<EvalOptions>();
  auto* cmd = app.add_subcommand("eval", "Evaluate a model: perplexity, multiple choice, exact match");
  cmd->add_option("--model", o->model, "Hugging Face model folder (with tokenizer files)")->required();
  cmd->add_option("--task", o->task, "perplexity | multiple_choice | exact_match")->required();
  cmd->add_option("--data", o->data,
                  "perplexity: a text file (one document) or .jsonl with \"text\"; multiple_choice: .jsonl "
                  "{context, choices, gold}; exact_match: .jsonl {prompt, answer|answers}")->required();
  cmd->add_option("--limit", o->limit, "at most this many examples (0: all)");
  cmd->add_option("--max-length", o->max_length, "perplexity: tokens per window (default: the model's context)");
  cmd->add_option("--stride", o->stride, "perplexity: new tokens scored per window (default: --max-length)");
  cmd->add_option("--max-new-tokens", o->max_new_tokens, "exact_match: generation length")->capture_default_str();
  cmd->add_option("--stop", o->stop, "exact_match: stop strings (default: newline)");
  cmd->add_option("--out", o->out, "write a JSON report here");
  forma::cli::add_adapter_option(cmd, &o->adapter);
  forma::cli::add_dtype_option(cmd, &o->dtype);
  forma::cli::add_device_option(cmd, &o->device);
  forma::cli::add_threads_option(cmd, &o->threads);
  cmd->callback([o] { run_eval(*o); });
});

}  // namespace forma::cli::eval_command

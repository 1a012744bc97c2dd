// `forma chat --model DIR`: an interactive chat in the terminal through the model's chat template
// (infer/chat_session.h). One line of input is one user message; replies stream to stdout. Lines
// starting with '/' are commands: /system TEXT, /reset, /exit (EOF exits too); '//' sends a
// message that starts with '/'. Reads from a pipe as well, for scripted sessions.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "forma/chat/chat_template.h"
#include "forma/cli/command.h"
#include "forma/cli/generation_flags.h"
#include "forma/cli/model_inputs.h"
#include "forma/core/error.h"
#include "forma/core/files.h"
#include "forma/core/log.h"
#include "forma/infer/chat_session.h"
#include "forma/infer/generation_defaults.h"
#include "forma/model/hf_io.h"
#include "forma/tokenizer/tokenizer.h"

// A named namespace (not an anonymous one): unity builds compile the commands in one unit.
namespace forma::cli::chat_command {

namespace fs = std::filesystem;

struct ChatArgs {
  std::string model_dir;
  std::string template_file;
  std::string system;
  std::string dtype = "fp32";
  std::string adapter;  // --adapter: a PEFT LoRA folder
  std::string device = "auto";
  int threads = 0;
  bool json = false;
  GenerationFlags flags;
};

constexpr const char* kCommandsHelp = "commands: /system TEXT, /reset, /exit (or end of input)";

// The folder's chat template (tokenizer_config.json, chat_template.jinja) or --chat-template FILE.
chat::ChatTemplate load_template(const ChatArgs& args) {
  const std::string config_path = (fs::path(args.model_dir) / "tokenizer_config.json").string();
  const bool has_config = fs::exists(config_path);
  if (!args.template_file.empty()) {
    const auto special = has_config ? chat::load_special_tokens(config_path) : nlohmann::ordered_json::object();
    try {
      return chat::ChatTemplate(read_file(args.template_file), special);
    } catch (const Error& e) {
      fail("--chat-template {}: {}", args.template_file, e.what());
    }
  }
  check(has_config, "{}: no tokenizer_config.json, so no chat template; give one with --chat-template FILE",
        args.model_dir);
  try {
    return chat::load_chat_template(config_path);
  } catch (const Error& e) {
    fail("{} (give a chat template with --chat-template FILE)", e.what());
  }
}

void print_json_reply(const infer::ChatReply& reply) {
  nlohmann::json out = {{"prompt_ids", reply.prompt_ids},
                        {"output_ids", reply.result.ids},
                        {"text", reply.result.text},
                        {"stop_reason", infer::stop_reason_name(reply.result.stop_reason)}};
  write_stdout(out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

// Handles a '/' command; returns false for /exit.
bool run_slash_command(const std::string& line, infer::ChatSession* session, bool interactive) {
  if (line == "/exit" || line == "/quit") return false;
  if (line == "/reset") {
    session->reset();
    if (interactive) std::fprintf(stderr, "(conversation cleared)\n");
  } else if (line == "/system" || line.rfind("/system ", 0) == 0) {
    session->set_system_prompt(line.size() > 8 ? line.substr(8) : "");
    if (interactive) std::fprintf(stderr, "(system prompt set)\n");
  } else {
    std::fprintf(stderr, "unknown command %s (%s; start a message with // to send a leading /)\n",
                 line.c_str(), kCommandsHelp);
  }
  return true;
}

void run_chat(const ChatArgs& args) {
  apply_threads(args.threads);
  check(fs::is_directory(args.model_dir), "--model: {} is not a folder", args.model_dir);
  const LoadOptions load_options{parse_compute_dtype(args.dtype, load_model_config(args.model_dir), "--dtype"),
                                 device_from_flag(args.device)};
  check(has_tokenizer_files(args.model_dir),
        "--model: {} has no tokenizer (tokenizer.json, tokenizer.model, encoder.json + vocab.bpe or *.tiktoken)",
        args.model_dir);
  std::unique_ptr<tok::Tokenizer> tokenizer = load_folder_tokenizer(args.model_dir);
  chat::ChatTemplate chat_template = load_template(args);
  CausalLM model = load_pretrained(args.model_dir, load_options);
  apply_adapter(model, args.adapter);
  auto config = infer::load_generation_defaults(args.model_dir, model->config(), tokenizer.get());
  args.flags.apply(&config);
  infer::ChatSession session(model, *tokenizer, std::move(chat_template), config);
  if (!args.system.empty()) session.set_system_prompt(args.system);

  const bool interactive = isatty(STDIN_FILENO) == 1;
  if (interactive) std::fprintf(stderr, "chatting with %s; %s\n", args.model_dir.c_str(), kCommandsHelp);
  infer::GenerationCallbacks callbacks;
  if (!args.json) callbacks.on_text = write_stdout;
  std::string line;
  while (true) {
    if (interactive) write_stdout("> ");
    if (!std::getline(std::cin, line)) break;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    if (line[0] == '/' && line.rfind("//", 0) != 0) {
      if (!run_slash_command(line, &session, interactive)) break;
      continue;
    }
    if (line.rfind("//", 0) == 0) line.erase(0, 1);
    try {
      infer::ChatReply reply = session.send(line, callbacks);
      if (args.json) {
        print_json_reply(reply);
      } else {
        write_stdout("\n");
      }
      log::debug("chat: {} prompt tokens, {} new tokens, stopped by {}", reply.prompt_ids.size(),
                 reply.result.ids.size(), infer::stop_reason_name(reply.result.stop_reason));
    } catch (const Error& e) {
      // The turn is dropped (the history is unchanged) and the chat goes on.
      std::fprintf(stderr, "error: %s\n", e.what());
    }
  }
  if (interactive) write_stdout("\n");
}

CommandRegistration reg(45, [](CLI::App& app) {
  auto* cmd = app.add_subcommand("chat", "chat with a model in the terminal, through its chat template");
  auto args = std::make_shared<ChatArgs>();
  cmd->add_option("--model", args->model_dir, "Hugging Face model folder (weights, tokenizer, chat template)")
      ->required();
  cmd->add_option("--chat-template", args->template_file,
                  "Jinja chat template file (default: the folder's tokenizer_config.json)");
  cmd->add_option("--system", args->system, "system prompt to start with (as /system TEXT)");
  cmd->add_flag("--json", args->json,
                "print one JSON line per reply (prompt_ids, output_ids, text, stop_reason) instead of text");
  args->flags.add_to(cmd);
  add_adapter_option(cmd, &args->adapter);
  add_dtype_option(cmd, &args->dtype);
  add_device_option(cmd, &args->device);
  add_threads_option(cmd, &args->threads);
  cmd->callback([args] { run_chat(*args); });
});

}  // namespace forma::cli::chat_command

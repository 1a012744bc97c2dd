// `forma serve --model DIR`: the OpenAI-compatible HTTP server (serve/http_server.h) over the
// serving engine (serve/engine.h). The engine runs on its own thread; SIGTERM or SIGINT stops
// accepting, lets running requests finish within --shutdown-grace seconds (then cancels them),
// and exits 0.
#include <netdb.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <thread>

#include "forma/chat/chat_template.h"
#include "forma/cli/command.h"
#include "forma/cli/model_inputs.h"
#include "forma/core/error.h"
#include "forma/core/files.h"
#include "forma/core/log.h"
#include "forma/infer/generation_defaults.h"
#include "forma/model/hf_io.h"
#include "forma/serve/engine.h"
#include "forma/serve/http_server.h"

// A named namespace (not an anonymous one): unity builds compile the commands in one unit.
namespace forma::cli::serve_command {

namespace fs = std::filesystem;

// The stop signal received (0: none); set by the signal handler, read by the serving loop.
volatile std::sig_atomic_t g_stop_signal = 0;

struct ServeArgs {
  std::string model_dir;
  std::string served_model_name;
  std::string chat_template_file;
  std::string dtype = "fp32";
  std::string device = "auto";
  std::string adapter;  // --adapter: a PEFT LoRA folder
  int threads = 0;
  serve::ServerOptions server;
  serve::EngineOptions engine;
};

// The folder's chat template or --chat-template FILE; none (chat endpoint off) when the folder
// has no template and no file is given.
std::unique_ptr<chat::ChatTemplate> load_template(const ServeArgs& args) {
  const std::string config_path = (fs::path(args.model_dir) / "tokenizer_config.json").string();
  const bool has_config = fs::exists(config_path);
  if (!args.chat_template_file.empty()) {
    const auto special = has_config ? chat::load_special_tokens(config_path) : nlohmann::ordered_json::object();
    try {
      return std::make_unique<chat::ChatTemplate>(read_file(args.chat_template_file), special);
    } catch (const Error& e) {
      fail("--chat-template {}: {}", args.chat_template_file, e.what());
    }
  }
  if (!has_config) return nullptr;
  try {
    return std::make_unique<chat::ChatTemplate>(chat::load_chat_template(config_path));
  } catch (const Error& e) {
    log::warn("serve: no chat template ({}); /v1/chat/completions is off", e.what());
    return nullptr;
  }
}

// Fails fast, before the weights load (minutes for large models), when host:port cannot be bound.
// The server binds again later; this is only the early answer.
void check_can_listen(const std::string& host, int port) {
  if (port == 0) return;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  check(getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) == 0 && found,
        "serve: cannot listen on {}:{} (not an address of this machine)", host, port);
  const int sock = socket(found->ai_family, found->ai_socktype, found->ai_protocol);
  const int yes = 1;
  setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  const bool bound = sock >= 0 && ::bind(sock, found->ai_addr, found->ai_addrlen) == 0;
  const int error = errno;
  if (sock >= 0) close(sock);
  freeaddrinfo(found);
  check(bound, "serve: cannot listen on {}:{} ({})", host, port, std::strerror(error));
}

void run_serve(ServeArgs args) {
  apply_threads(args.threads);
  check(fs::is_directory(args.model_dir), "--model: {} is not a folder", args.model_dir);
  check(args.server.port >= 0 && args.server.port <= 65535, "--port must be 0..65535, got {}", args.server.port);
  check_can_listen(args.server.host, args.server.port);
  const ModelConfig model_config = load_model_config(args.model_dir);
  std::unique_ptr<tok::Tokenizer> tokenizer = load_folder_tokenizer(args.model_dir);
  std::unique_ptr<chat::ChatTemplate> chat_template = tokenizer ? load_template(args) : nullptr;

  serve::ServedModel served;
  served.name = !args.served_model_name.empty() ? args.served_model_name
                                                 : fs::path(args.model_dir).lexically_normal().filename().string();
  if (served.name.empty()) served.name = fs::absolute(args.model_dir).parent_path().filename().string();
  served.created = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
  served.context_length = model_config.max_position_embeddings;
  served.tokenizer = tokenizer.get();
  served.chat_template = chat_template.get();
  served.defaults = infer::load_generation_defaults(args.model_dir, model_config, tokenizer.get());
  if (tokenizer && chat_template) {
    // End-of-turn tokens, as forma chat stops on them (infer/chat_session.h).
    if (auto eos = tokenizer->eos_id()) served.chat_eos_ids.push_back(*eos);
    const auto& special = chat_template->special_tokens();
    if (special.contains("eos_token") && special["eos_token"].is_string()) {
      if (auto id = tokenizer->token_to_id(special["eos_token"].get<std::string>())) served.chat_eos_ids.push_back(*id);
    }
  }

  const LoadOptions load_options{parse_compute_dtype(args.dtype, model_config, "--dtype"), device_from_flag(args.device)};
  CausalLM model = load_pretrained(args.model_dir, load_options);
  apply_adapter(model, args.adapter);
  serve::Engine engine(model, tokenizer.get(), args.engine);
  serve::HttpServer server(engine, std::move(served), args.server);

  // SIGTERM/SIGINT may land on any thread (LibTorch's workers exist already), so a handler that
  // only records the signal, and a thread that polls for it and stops the server. A write to a
  // client that went away must fail with EPIPE, not kill the server.
  struct sigaction action {};
  action.sa_handler = [](int sig) { g_stop_signal = sig; };
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  signal(SIGPIPE, SIG_IGN);

  const int port = server.bind();
  std::thread engine_thread([&engine] { engine.run(); });
  std::atomic<bool> listening_done{false};
  std::thread signal_thread([&] {
    while (!listening_done) {
      const int sig = g_stop_signal;
      if (sig != 0) {
        log::info("serve: {} received: finishing running requests (at most {} s), then exiting",
                  sig == SIGTERM ? "SIGTERM" : "SIGINT", args.server.shutdown_grace_seconds);
        server.shutdown();
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  log::info("serve: {} on http://{}:{} (OpenAI API under /v1, chat page at /)", args.model_dir, args.server.host, port);
  server.listen();
  listening_done = true;
  signal_thread.join();
  engine.begin_shutdown(0);
  engine_thread.join();
  log::info("serve: stopped");
}

CommandRegistration reg(45, [](CLI::App& app) {
  auto* cmd = app.add_subcommand("serve", "OpenAI-compatible HTTP server (completions, chat, streaming) with a web chat page");
  auto args = std::make_shared<ServeArgs>();
  cmd->add_option("--model", args->model_dir, "Hugging Face model folder (config.json, weights, tokenizer)")->required();
  cmd->add_option("--host", args->server.host, "address to listen on (default 127.0.0.1)");
  cmd->add_option("--port", args->server.port, "port to listen on (default 8000; 0: any free port)");
  cmd->add_option("--api-key", args->server.api_key, "require 'Authorization: Bearer KEY' on /v1/*");
  cmd->add_option("--served-model-name", args->served_model_name, "the model name clients use (default: the folder's name)");
  cmd->add_option("--chat-template", args->chat_template_file, "a Jinja chat template file instead of the folder's");
  cmd->add_option("--max-batch", args->engine.max_batch, "most sequences decoded together (default 8)");
  cmd->add_option("--kv-cache-tokens", args->engine.kv_cache_tokens,
                  "KV-cache capacity in tokens over all sequences (default 0: max-batch x context)");
  cmd->add_option("--max-queue", args->engine.max_queue, "waiting requests beyond this get 429 (default 256)");
  cmd->add_option("--max-body-bytes", args->server.max_body_bytes, "larger request bodies get 413 (default 8 MiB)");
  cmd->add_option("--http-threads", args->server.http_threads, "connections served at once; a stream holds one (default 128)");
  cmd->add_option("--shutdown-grace", args->server.shutdown_grace_seconds,
                  "seconds running requests may take to finish after SIGTERM before they are cancelled (default 10)");
  add_dtype_option(cmd, &args->dtype);
  add_device_option(cmd, &args->device);
  add_threads_option(cmd, &args->threads);
  add_adapter_option(cmd, &args->adapter);
  cmd->callback([args] { run_serve(*args); });
});

}  // namespace forma::cli::serve_command

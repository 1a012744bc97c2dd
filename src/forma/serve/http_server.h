// `forma serve`'s HTTP side on cpp-httplib: the routes of the OpenAI-compatible API (openai_api.h),
// SSE streaming, /health, /metrics, the web page at /, bearer-token auth, the body-size limit,
// and a graceful stop. Generation runs on the engine (engine.h), which the caller drives on its
// own thread; request threads only submit, wait and write.
#pragma once
#include <atomic>
#include <cstddef>
#include <memory>
#include <string>

#include "forma/serve/engine.h"
#include "forma/serve/metrics.h"
#include "forma/serve/openai_api.h"

namespace httplib {
class Server;
}

namespace forma::serve {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;                          // 0: any free port (bind() says which)
  std::string api_key;                      // empty: no auth; else /v1/* needs "Authorization: Bearer KEY"
  size_t max_body_bytes = 8 << 20;          // larger request bodies get 413
  int http_threads = 128;                   // connections served at once (a stream holds one)
  double shutdown_grace_seconds = 10;       // running requests may finish this long after SIGTERM
};

class HttpServer {
 public:
  // `engine` and `model`'s tokenizer and template must outlive the server.
  HttpServer(Engine& engine, ServedModel model, ServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds the listening socket; returns the port. Throws forma::Error when the address is taken.
  int bind();
  // Serves until stop(); returns after the in-flight requests are answered.
  void listen();
  // Graceful stop: new generation requests get 503 at once; the engine gets `grace` seconds to
  // finish the running ones (then cancels them); the listener then closes. Any thread.
  void shutdown();
  // Whether shutdown() has begun.
  bool stopping() const { return stopping_; }

 private:
  void add_routes();
  struct Impl;
  Engine& engine_;
  ServedModel model_;
  ServerOptions options_;
  Metrics metrics_;
  std::unique_ptr<httplib::Server> server_;
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> active_{0};  // generation requests in flight (streams included)
  std::atomic<uint64_t> next_id_{1};
};

// The web chat page served at / (web_page.cpp).
const char* web_page_html();

}  // namespace forma::serve

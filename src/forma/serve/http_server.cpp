#include "forma/serve/http_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "forma/core/error.h"
#include "forma/core/log.h"
#include "forma/serve/sse.h"

namespace forma::serve {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace http_detail {

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

void send_error(httplib::Response& res, const ApiError& e) { send_json(res, e.status, error_body(e)); }

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// One HTTP generation request: its choices' engine ids and what the engine has reported so far.
// Shared by the request thread (which writes the response) and the engine thread (callbacks).
struct Job {
  ParsedRequest request;
  std::string id;
  int64_t created = 0;
  Clock::time_point arrival = Clock::now();
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<uint64_t> engine_ids;
  std::vector<std::vector<TokenEvent>> tokens;  // per choice (non-streaming)
  std::vector<std::optional<FinishedEvent>> finished;
  std::vector<std::string> streamed;            // per choice: text already sent
  std::vector<std::optional<double>> first_token_s;
  std::deque<std::string> events;               // SSE events not yet written
  size_t remaining = 0;
  bool done = false;
};

}  // namespace http_detail

using http_detail::Job;

struct HttpServer::Impl {
  // The SSE chunk for one token of choice k (called on the engine thread, with job->mutex held).
  static void stream_token(HttpServer& s, Job& job, size_t k, const TokenEvent& t) {
    const auto& r = job.request;
    job.streamed[k] += t.text;
    if (t.text.empty() && !(r.logprobs && t.logprobs)) return;
    json chunk = r.endpoint == Endpoint::kChat
                     ? chat_chunk(r, static_cast<int64_t>(k), json{{"content", t.text}}, &t, nullptr, s.model_, job.id, job.created)
                     : completion_chunk(r, static_cast<int64_t>(k), t.text, &t, nullptr, s.model_, job.id, job.created);
    job.events.push_back(sse_event(chunk));
  }

  // The last chunk of choice k: text the engine released only at the end (held-back bytes) and
  // the finish reason.
  static void stream_finish(HttpServer& s, Job& job, size_t k, const FinishedEvent& f) {
    const auto& r = job.request;
    if (f.reason == FinishReason::kError) {
      job.events.push_back(sse_event(error_body(ApiError(500, f.error))));
      return;
    }
    std::string tail;
    const std::string& text = f.result.text;
    if (text.size() > job.streamed[k].size() && text.compare(0, job.streamed[k].size(), job.streamed[k]) == 0) {
      tail = text.substr(job.streamed[k].size());
    }
    const char* reason = finish_reason_name(f.reason);
    json chunk = r.endpoint == Endpoint::kChat
                     ? chat_chunk(r, static_cast<int64_t>(k), tail.empty() ? json::object() : json{{"content", tail}},
                                  nullptr, reason, s.model_, job.id, job.created)
                     : completion_chunk(r, static_cast<int64_t>(k), tail, nullptr, reason, s.model_, job.id, job.created);
    job.events.push_back(sse_event(chunk));
  }

  // Submits every choice; on failure cancels the ones already queued and throws ApiError.
  static void submit(HttpServer& s, const std::shared_ptr<Job>& job) {
    auto& r = job->request;
    const size_t n = r.choices.size();
    job->tokens.resize(n);
    job->finished.resize(n);
    job->streamed.resize(n);
    job->first_token_s.resize(n);
    job->remaining = n;
    if (r.stream && r.endpoint == Endpoint::kChat) {
      for (size_t k = 0; k < n; ++k) {
        job->events.push_back(sse_event(chat_chunk(r, static_cast<int64_t>(k), json{{"role", "assistant"}, {"content", ""}},
                                                   nullptr, nullptr, s.model_, job->id, job->created)));
      }
    }
    for (size_t k = 0; k < n; ++k) {
      RequestCallbacks callbacks;
      HttpServer* server = &s;
      callbacks.on_token = [server, job, k](const TokenEvent& t) {
        std::lock_guard<std::mutex> lock(job->mutex);
        if (!job->first_token_s[k]) job->first_token_s[k] = http_detail::seconds_since(job->arrival);
        if (job->request.stream) {
          stream_token(*server, *job, k, t);
        } else {
          job->tokens[k].push_back(t);
        }
        job->changed.notify_all();
      };
      callbacks.on_finish = [server, job, k](const FinishedEvent& f) {
        std::lock_guard<std::mutex> lock(job->mutex);
        server->metrics_.generation(f.prompt_tokens, static_cast<int64_t>(f.result.ids.size()),
                                    job->first_token_s[k].value_or(-1), http_detail::seconds_since(job->arrival));
        job->finished[k] = f;
        if (job->request.stream) stream_finish(*server, *job, k, f);
        if (--job->remaining == 0) {
          if (job->request.stream) {
            if (job->request.include_usage) {
              std::vector<FinishedEvent> all;
              for (auto& e : job->finished) all.push_back(*e);
              job->events.push_back(sse_event(usage_chunk(job->request, all, server->model_, job->id, job->created)));
            }
            job->events.push_back(sse_done());
          }
          job->done = true;
        }
        job->changed.notify_all();
      };
      try {
        EngineRequest copy = r.choices[k];
        const uint64_t engine_id = s.engine_.submit(std::move(copy), std::move(callbacks));
        std::lock_guard<std::mutex> lock(job->mutex);
        job->engine_ids.push_back(engine_id);
      } catch (const QueueFull& e) {
        cancel_all(s, *job);
        throw ApiError(429, std::string("The server is busy: ") + e.what() + "; retry later", "", "rate_limit_exceeded",
                       "requests");
      } catch (const Error& e) {
        cancel_all(s, *job);
        if (s.stopping_) throw ApiError(503, "The server is shutting down", "", "", "server_error");
        throw ApiError(400, e.what());
      }
    }
  }

  static void cancel_all(HttpServer& s, Job& job) {
    std::vector<uint64_t> ids;
    {
      std::lock_guard<std::mutex> lock(job.mutex);
      ids = job.engine_ids;
    }
    for (uint64_t id : ids) s.engine_.cancel(id);
  }

  static json whole_body(HttpServer& s, Job& job) {
    std::vector<FinishedEvent> all;
    for (auto& f : job.finished) {
      if (f->reason == FinishReason::kError) throw ApiError(500, "generation failed: " + f->error);
      all.push_back(*f);
    }
    const auto& r = job.request;
    return r.endpoint == Endpoint::kChat ? chat_body(r, all, job.tokens, s.model_, job.id, job.created)
                                         : completion_body(r, all, job.tokens, s.model_, job.id, job.created);
  }

  static void generate(HttpServer& s, const httplib::Request& req, httplib::Response& res, Endpoint endpoint) {
    if (s.stopping_) throw ApiError(503, "The server is shutting down", "", "", "server_error");
    const json body = parse_json_body(req.body);
    auto job = std::make_shared<Job>();
    const uint64_t number = s.next_id_++;
    job->id = (endpoint == Endpoint::kChat ? "chatcmpl-" : "cmpl-") + std::to_string(number);
    job->created = http_detail::unix_now();
    const std::string label = "request " + std::to_string(number);
    job->request = endpoint == Endpoint::kChat ? parse_chat_request(body, s.model_, label)
                                               : parse_completion_request(body, s.model_, label);
    submit(s, job);
    ++s.active_;
    HttpServer* server = &s;
    // The releaser runs once the response is over; success is false when the client went away
    // (a write failed), which cancels whatever of the request is still running.
    auto release = [server, job](bool success) {
      if (!success) {
        log::info("serve: {} cancelled: the client disconnected", job->id);
        cancel_all(*server, *job);
      }
      --server->active_;
    };
    if (job->request.stream) {
      res.set_header("Cache-Control", "no-cache");
      res.set_chunked_content_provider(
          "text/event-stream",
          [job](size_t, httplib::DataSink& sink) {
            std::deque<std::string> out;
            bool finished = false;
            {
              std::unique_lock<std::mutex> lock(job->mutex);
              job->changed.wait_for(lock, std::chrono::milliseconds(200), [&] { return !job->events.empty() || job->done; });
              out.swap(job->events);
              finished = job->done;
            }
            for (const auto& e : out) {
              if (!sink.write(e.data(), e.size())) return false;
            }
            if (finished) sink.done();
            return true;
          },
          release);
      return;
    }
    // Not streaming: the body comes at the end. While waiting, a space every second (JSON allows
    // leading whitespace) finds out whether the client is still there: writing to a closed
    // connection fails, which cancels the request instead of computing for nobody.
    res.set_chunked_content_provider(
        "application/json",
        [server, job](size_t, httplib::DataSink& sink) {
          bool finished;
          {
            std::unique_lock<std::mutex> lock(job->mutex);
            finished = job->changed.wait_for(lock, std::chrono::seconds(1), [&] { return job->done; });
          }
          if (!finished) return sink.write(" ", 1);
          json out;
          try {
            out = whole_body(*server, *job);
          } catch (const ApiError& e) {
            out = error_body(e);
          }
          const std::string text = out.dump(-1, ' ', false, json::error_handler_t::replace);
          if (!sink.write(text.data(), text.size())) return false;
          sink.done();
          return true;
        },
        release);
  }
};

HttpServer::HttpServer(Engine& engine, ServedModel model, ServerOptions options)
    : engine_(engine), model_(std::move(model)), options_(std::move(options)), server_(std::make_unique<httplib::Server>()) {
  check(options_.http_threads >= 1, "--http-threads must be >= 1, got {}", options_.http_threads);
  const int threads = options_.http_threads;
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  server_->set_payload_max_length(options_.max_body_bytes);
  // httplib's default options add SO_REUSEPORT, with which a second server binds the same port
  // and the kernel splits the connections between the two. SO_REUSEADDR alone still allows a
  // quick restart while old connections are in TIME_WAIT.
  server_->set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  add_routes();
}

HttpServer::~HttpServer() = default;

int HttpServer::bind() {
  int port = options_.port;
  if (port == 0) {
    port = server_->bind_to_any_port(options_.host);
  } else if (!server_->bind_to_port(options_.host, port)) {
    port = -1;
  }
  check(port > 0, "serve: cannot listen on {}:{} (address in use, or not an address of this machine)", options_.host,
        options_.port);
  return port;
}

void HttpServer::listen() { server_->listen_after_bind(); }

void HttpServer::shutdown() {
  if (stopping_.exchange(true)) return;
  engine_.begin_shutdown(options_.shutdown_grace_seconds);
  // Wait for the running requests (the engine cancels them at the grace deadline) and for their
  // responses to be written, then close the listener.
  const auto limit = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                        std::chrono::duration<double>(options_.shutdown_grace_seconds + 5));
  while (Clock::now() < limit) {
    const EngineStats stats = engine_.stats();
    if (stats.waiting == 0 && stats.running == 0 && active_ == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  server_->stop();
}

void HttpServer::add_routes() {
  httplib::Server& svr = *server_;
  svr.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (options_.api_key.empty() || req.path.rfind("/v1/", 0) != 0) return httplib::Server::HandlerResponse::Unhandled;
    if (req.get_header_value("Authorization") == "Bearer " + options_.api_key) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    http_detail::send_error(res, ApiError(401, "Incorrect API key provided. Pass it as 'Authorization: Bearer KEY'.", "",
                                          "invalid_api_key"));
    return httplib::Server::HandlerResponse::Handled;
  });
  // httplib's own errors (unknown path, body too large, malformed HTTP) get OpenAI's error body.
  svr.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string message = "HTTP error " + std::to_string(res.status);
    if (res.status == 404) message = "Not found: " + req.method + " " + req.path;
    if (res.status == 413) message = "The request body is larger than the limit of " + std::to_string(options_.max_body_bytes) + " bytes";
    if (res.status == 405) message = "Method not allowed: " + req.method + " " + req.path;
    http_detail::send_error(res, ApiError(res.status, message));
  });
  svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    try {
      std::rethrow_exception(ep);
    } catch (const ApiError& e) {
      http_detail::send_error(res, e);
    } catch (const std::exception& e) {
      log::warn("serve: internal error: {}", e.what());
      http_detail::send_error(res, ApiError(500, std::string("internal error: ") + e.what()));
    } catch (...) {
      http_detail::send_error(res, ApiError(500, "internal error"));
    }
  });
  svr.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    // Paths clients make up are counted as "other": labels must stay a small set.
    static const std::set<std::string> kRoutes = {"/", "/health", "/metrics", "/v1/models", "/v1/completions",
                                                  "/v1/chat/completions"};
    const std::string path = req.path.rfind("/v1/models/", 0) == 0 ? "/v1/models" : req.path;
    metrics_.request(kRoutes.count(path) ? path : "other", res.status);
  });

  svr.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(web_page_html(), "text/html; charset=utf-8");
  });
  svr.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    http_detail::send_json(res, stopping_ ? 503 : 200, {{"status", stopping_ ? "shutting down" : "ok"}});
  });
  svr.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_.render(engine_.stats()), "text/plain; version=0.0.4");
  });
  svr.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    http_detail::send_json(res, 200, models_body(model_));
  });
  svr.Get(R"(/v1/models/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
    if (req.matches[1] != model_.name) {
      throw ApiError(404, "The model '" + std::string(req.matches[1]) + "' does not exist", "model", "model_not_found");
    }
    http_detail::send_json(res, 200, models_body(model_)["data"][0]);
  });
  svr.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
    Impl::generate(*this, req, res, Endpoint::kCompletions);
  });
  svr.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
    Impl::generate(*this, req, res, Endpoint::kChat);
  });
}

}  // namespace forma::serve

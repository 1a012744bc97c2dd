// The OpenAI-compatible API without the sockets: request bodies of /v1/completions and
// /v1/chat/completions parsed and validated into engine requests, and the response bodies and
// stream chunks built from the engine's events. Field names, defaults and error bodies follow
// OpenAI's API reference; top_k, min_p and repetition_penalty are accepted as extensions (as vLLM
// does). A request that is malformed throws ApiError, which carries the HTTP status and becomes
// OpenAI's error JSON.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "forma/chat/chat_template.h"
#include "forma/infer/generate.h"
#include "forma/serve/engine.h"
#include "forma/tokenizer/tokenizer.h"

namespace forma::serve {

// An error answered to the client: {"error": {"message", "type", "param", "code"}} with `status`.
struct ApiError : std::runtime_error {
  ApiError(int status, std::string message, std::string param = "", std::string code = "",
           std::string type = "");
  int status;
  std::string type;   // "invalid_request_error" for 4xx unless given, "server_error" for 5xx
  std::string param;  // the request field at fault, or empty (null in the body)
  std::string code;   // e.g. "model_not_found", or empty (null)
};

nlohmann::json error_body(const ApiError& error);

// What the server serves and the API needs to know about it.
struct ServedModel {
  std::string name;                          // the "model" clients must name
  int64_t created = 0;                       // unix time the server started
  int64_t context_length = 0;                // max_position_embeddings (0: unbounded)
  const tok::Tokenizer* tokenizer = nullptr;  // may be null: token-id prompts only, no text
  const chat::ChatTemplate* chat_template = nullptr;  // may be null: no chat endpoint
  infer::GenerationConfig defaults;          // the folder's generation_config.json and EOS ids
  std::vector<int32_t> chat_eos_ids;         // end-of-turn ids added for chat (template eos_token)
};

enum class Endpoint { kCompletions, kChat };

// One parsed request: `choices` holds one engine request per returned choice (prompt i, sample j
// is choice i * n + j).
struct ParsedRequest {
  Endpoint endpoint = Endpoint::kCompletions;
  std::string model;
  std::vector<EngineRequest> choices;
  std::vector<std::string> prompt_texts;  // per prompt: the text (decoded from ids if given as ids)
  int64_t n = 1;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  bool echo = false;           // completions: the prompt leads the text (and logprobs)
  bool logprobs = false;       // completions: "logprobs" given (top alternatives = top_logprobs)
  int64_t top_logprobs = 0;
};

// The body as JSON: 400 when it is not a JSON object.
nlohmann::json parse_json_body(const std::string& body);
// Validates and converts a request body; `label` names the request in engine errors.
ParsedRequest parse_completion_request(const nlohmann::json& body, const ServedModel& model,
                                       const std::string& label);
ParsedRequest parse_chat_request(const nlohmann::json& body, const ServedModel& model,
                                 const std::string& label);

// "stop" or "length" (cancelled requests report "abort"; errors never reach a response body).
const char* finish_reason_name(FinishReason reason);

// GET /v1/models.
nlohmann::json models_body(const ServedModel& model);

// Whole (non-streaming) responses. `finished[k]` is choice k's event; `id` e.g. "cmpl-12".
nlohmann::json completion_body(const ParsedRequest& request, const std::vector<FinishedEvent>& finished,
                               const std::vector<std::vector<TokenEvent>>& tokens, const ServedModel& model,
                               const std::string& id, int64_t created);
nlohmann::json chat_body(const ParsedRequest& request, const std::vector<FinishedEvent>& finished,
                         const std::vector<std::vector<TokenEvent>>& tokens, const ServedModel& model,
                         const std::string& id, int64_t created);

// Stream chunks. `text` is what the choice adds; `finish` is null until its last chunk.
nlohmann::json completion_chunk(const ParsedRequest& request, int64_t index, const std::string& text,
                                const TokenEvent* token, const char* finish, const ServedModel& model,
                                const std::string& id, int64_t created);
nlohmann::json chat_chunk(const ParsedRequest& request, int64_t index, const nlohmann::json& delta,
                          const TokenEvent* token, const char* finish, const ServedModel& model,
                          const std::string& id, int64_t created);
// The last chunk with usage (stream_options.include_usage): no choices.
nlohmann::json usage_chunk(const ParsedRequest& request, const std::vector<FinishedEvent>& finished,
                           const ServedModel& model, const std::string& id, int64_t created);
nlohmann::json usage_json(const std::vector<FinishedEvent>& finished, int64_t n);

}  // namespace forma::serve

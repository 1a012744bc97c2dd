#include "forma/serve/openai_api.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "forma/core/error.h"

namespace forma::serve {

using nlohmann::json;

ApiError::ApiError(int status_, std::string message, std::string param_, std::string code_, std::string type_)
    : std::runtime_error(std::move(message)),
      status(status_),
      type(!type_.empty() ? std::move(type_) : status_ >= 500 ? "server_error" : "invalid_request_error"),
      param(std::move(param_)),
      code(std::move(code_)) {}

json error_body(const ApiError& error) {
  return {{"error",
           {{"message", error.what()},
            {"type", error.type},
            {"param", error.param.empty() ? json(nullptr) : json(error.param)},
            {"code", error.code.empty() ? json(nullptr) : json(error.code)}}}};
}

json parse_json_body(const std::string& body) {
  json parsed;
  try {
    parsed = json::parse(body);
  } catch (const json::exception& e) {
    throw ApiError(400, std::string("the request body is not valid JSON: ") + e.what());
  }
  if (!parsed.is_object()) throw ApiError(400, "the request body must be a JSON object");
  return parsed;
}

// Typed access to optional request fields: a field of the wrong type or out of range is a 400
// naming it. null counts as absent, as in OpenAI's API.
namespace openai_fields {

bool present(const json& body, const char* key) { return body.contains(key) && !body[key].is_null(); }

[[noreturn]] void bad(const char* key, const std::string& what) {
  throw ApiError(400, std::string("'") + key + "': " + what, key);
}

double number(const json& body, const char* key, double fallback, double lo, double hi) {
  if (!present(body, key)) return fallback;
  const json& v = body[key];
  if (!v.is_number()) bad(key, "expected a number, got " + v.dump());
  const double x = v.get<double>();
  if (!(x >= lo && x <= hi)) bad(key, "must be between " + json(lo).dump() + " and " + json(hi).dump() + ", got " + v.dump());
  return x;
}

int64_t integer(const json& body, const char* key, int64_t fallback, int64_t lo, int64_t hi) {
  if (!present(body, key)) return fallback;
  const json& v = body[key];
  if (!v.is_number_integer()) bad(key, "expected an integer, got " + v.dump());
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) bad(key, "too large: " + v.dump());
  const int64_t x = v.get<int64_t>();
  if (x < lo || x > hi) bad(key, "must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", got " + v.dump());
  return x;
}

bool boolean(const json& body, const char* key, bool fallback) {
  if (!present(body, key)) return fallback;
  if (!body[key].is_boolean()) bad(key, "expected true or false, got " + body[key].dump());
  return body[key].get<bool>();
}

// "stop": a string or a list of at most 4 non-empty strings.
std::vector<std::string> stop_strings(const json& body) {
  if (!present(body, "stop")) return {};
  const json& v = body["stop"];
  std::vector<std::string> out;
  if (v.is_string()) {
    out.push_back(v.get<std::string>());
  } else if (v.is_array()) {
    if (v.size() > 4) bad("stop", "at most 4 stop sequences, got " + std::to_string(v.size()));
    for (const auto& s : v) {
      if (!s.is_string()) bad("stop", "expected strings, got " + s.dump());
      out.push_back(s.get<std::string>());
    }
  } else {
    bad("stop", "expected a string or a list of strings");
  }
  for (const auto& s : out) {
    if (s.empty()) bad("stop", "a stop sequence is empty");
  }
  return out;
}

}  // namespace openai_fields

namespace of = openai_fields;

// A named namespace, not an anonymous one: unity builds put other files' helpers in this unit.
namespace openai_detail {

void check_model(const json& body, const ServedModel& model) {
  if (!of::present(body, "model")) throw ApiError(400, "'model' is required", "model");
  if (!body["model"].is_string()) of::bad("model", "expected a string");
  const std::string name = body["model"].get<std::string>();
  if (name != model.name) {
    throw ApiError(404, "The model '" + name + "' does not exist (this server serves '" + model.name + "')",
                   "model", "model_not_found");
  }
}

// The sampling settings common to both endpoints, over the model folder's defaults.
infer::GenerationConfig sampling_config(const json& body, const ServedModel& model) {
  infer::GenerationConfig config = model.defaults;
  auto& s = config.sampling;
  s.temperature = of::number(body, "temperature", s.temperature, 0, 2);
  s.top_p = of::number(body, "top_p", s.top_p, 0, 1);
  if (of::present(body, "top_p") && s.top_p <= 0) of::bad("top_p", "must be > 0");
  // top_k: -1 (vLLM's "off") or 0 mean no limit.
  s.top_k = std::max<int64_t>(0, of::integer(body, "top_k", s.top_k, -1, INT32_MAX));
  s.min_p = of::number(body, "min_p", s.min_p, 0, 1);
  s.repetition_penalty = of::number(body, "repetition_penalty", s.repetition_penalty, 0.01, 100);
  for (const char* key : {"presence_penalty", "frequency_penalty"}) {
    if (of::number(body, key, 0, -2, 2) != 0) of::bad(key, "only 0 is supported (use repetition_penalty)");
  }
  if (of::present(body, "seed")) config.seed = static_cast<uint64_t>(of::integer(body, "seed", 0, INT64_MIN, INT64_MAX));
  config.stop_strings = of::stop_strings(body);
  if (!config.stop_strings.empty() && !model.tokenizer) of::bad("stop", "this model has no tokenizer, so no stop strings");
  // vLLM's extension for benchmarks: generate the whole token budget.
  if (of::boolean(body, "ignore_eos", false)) config.eos_ids.clear();
  config.use_cache = true;
  return config;
}

// The prompt(s) of a completion request as token ids.
std::vector<std::vector<int32_t>> completion_prompts(const json& body, const ServedModel& model) {
  if (!of::present(body, "prompt")) throw ApiError(400, "'prompt' is required", "prompt");
  const json& p = body["prompt"];
  auto encode = [&](const json& text) {
    if (!model.tokenizer) of::bad("prompt", "this model has no tokenizer: give the prompt as token ids");
    return model.tokenizer->encode(text.get<std::string>(), /*add_special_tokens=*/true);
  };
  auto ids_of = [&](const json& list) {
    std::vector<int32_t> ids;
    for (const auto& t : list) {
      if (!t.is_number_integer()) of::bad("prompt", "token ids must be integers, got " + t.dump());
      const int64_t id = t.get<int64_t>();
      if (id < 0 || id > INT32_MAX) of::bad("prompt", "token id " + t.dump() + " is out of range");
      ids.push_back(static_cast<int32_t>(id));
    }
    return ids;
  };
  std::vector<std::vector<int32_t>> out;
  if (p.is_string()) {
    out.push_back(encode(p));
  } else if (p.is_array() && !p.empty() && p[0].is_number()) {
    out.push_back(ids_of(p));
  } else if (p.is_array() && !p.empty()) {
    for (const auto& item : p) {
      if (item.is_string()) {
        out.push_back(encode(item));
      } else if (item.is_array()) {
        out.push_back(ids_of(item));
      } else {
        of::bad("prompt", "expected a string, a list of strings, a list of token ids or a list of such lists");
      }
    }
  } else {
    of::bad("prompt", "expected a non-empty string, list of strings or list of token ids");
  }
  for (const auto& ids : out) {
    if (ids.empty()) of::bad("prompt", "a prompt has no tokens");
  }
  return out;
}

// The request's token budget against the model's context, as OpenAI words it.
void check_context(const std::vector<int32_t>& prompt, int64_t max_tokens, const ServedModel& model,
                   const char* prompt_field, const char* tokens_field) {
  if (model.context_length <= 0) return;
  const auto prompt_len = static_cast<int64_t>(prompt.size());
  // At least one position follows the prompt, even when scoring only (max_tokens 0 with echo).
  if (prompt_len + std::max<int64_t>(max_tokens, 1) > model.context_length) {
    throw ApiError(400,
                   "This model's maximum context length is " + std::to_string(model.context_length) +
                       " tokens. However, you requested " + std::to_string(prompt_len + max_tokens) + " tokens (" +
                       std::to_string(prompt_len) + " in the " + prompt_field + ", " + std::to_string(max_tokens) +
                       " in the completion). Please reduce the length of the " + prompt_field + " or completion.",
                   prompt_len >= model.context_length ? prompt_field : tokens_field, "context_length_exceeded");
  }
}

std::string token_text(const ServedModel& model, int32_t id) {
  return model.tokenizer ? model.tokenizer->decode({id}) : std::to_string(id);
}

// Token strings may end inside a UTF-8 character: JSON needs valid text, so such bytes are replaced.
std::string valid_utf8(const std::string& s) {
  return json::parse(json(s).dump(-1, ' ', false, json::error_handler_t::replace)).get<std::string>();
}

std::vector<int> bytes_of(const std::string& s) { return std::vector<int>(s.begin(), s.end()); }

}  // namespace openai_detail

ParsedRequest parse_completion_request(const json& body, const ServedModel& model, const std::string& label) {
  ParsedRequest r;
  r.endpoint = Endpoint::kCompletions;
  openai_detail::check_model(body, model);
  r.model = model.name;
  infer::GenerationConfig config = openai_detail::sampling_config(body, model);
  r.echo = of::boolean(body, "echo", false);
  r.stream = of::boolean(body, "stream", false);
  if (of::present(body, "stream_options")) {
    if (!body["stream_options"].is_object()) of::bad("stream_options", "expected an object");
    r.include_usage = of::boolean(body["stream_options"], "include_usage", false);
  }
  r.n = of::integer(body, "n", 1, 1, 128);
  if (of::present(body, "best_of") && of::integer(body, "best_of", 1, 1, 128) != r.n) {
    of::bad("best_of", "only best_of = n is supported");
  }
  r.logprobs = of::present(body, "logprobs");
  r.top_logprobs = of::integer(body, "logprobs", 0, 0, 20);
  const int64_t max_tokens = of::integer(body, "max_tokens", 16, 0, INT32_MAX);
  if (max_tokens == 0 && !r.echo) of::bad("max_tokens", "must be >= 1 unless echo is true");
  if (max_tokens == 0 && r.stream) of::bad("max_tokens", "must be >= 1 when streaming");
  config.max_new_tokens = max_tokens;
  const auto prompts = openai_detail::completion_prompts(body, model);
  for (size_t i = 0; i < prompts.size(); ++i) {
    openai_detail::check_context(prompts[i], max_tokens, model, "prompt", "max_tokens");
    r.prompt_texts.push_back(model.tokenizer ? model.tokenizer->decode(prompts[i]) : "");
    for (int64_t j = 0; j < r.n; ++j) {
      EngineRequest e;
      e.prompt_ids = prompts[i];
      e.config = config;
      e.config.seed = config.seed + static_cast<uint64_t>(j);  // the n samples must differ
      e.logprobs = r.logprobs;
      e.top_logprobs = r.top_logprobs;
      e.echo_logprobs = r.echo && r.logprobs;
      e.label = label + " prompt " + std::to_string(i);
      r.choices.push_back(std::move(e));
    }
  }
  return r;
}

namespace openai_detail {

// A message's content: a string, or a list of {"type": "text", "text": ...} parts (joined).
std::string message_content(const json& message, size_t index) {
  const std::string where = "messages[" + std::to_string(index) + "].content";
  if (!message.contains("content") || message["content"].is_null()) return "";
  const json& c = message["content"];
  if (c.is_string()) return c.get<std::string>();
  if (!c.is_array()) throw ApiError(400, "'" + where + "': expected a string or a list of parts", where);
  std::string text;
  for (const auto& part : c) {
    if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string()) {
      throw ApiError(400, "'" + where + "': only text parts ({\"type\": \"text\", \"text\": ...}) are supported", where);
    }
    text += part["text"].get<std::string>();
  }
  return text;
}

}  // namespace openai_detail

ParsedRequest parse_chat_request(const json& body, const ServedModel& model, const std::string& label) {
  ParsedRequest r;
  r.endpoint = Endpoint::kChat;
  openai_detail::check_model(body, model);
  r.model = model.name;
  if (!model.chat_template || !model.tokenizer) {
    throw ApiError(400, "this model has no chat template (tokenizer_config.json chat_template); use /v1/completions");
  }
  if (!of::present(body, "messages")) throw ApiError(400, "'messages' is required", "messages");
  const json& messages = body["messages"];
  if (!messages.is_array() || messages.empty()) of::bad("messages", "expected a non-empty list of messages");
  std::vector<chat::ChatMessage> turns;
  for (size_t i = 0; i < messages.size(); ++i) {
    const json& m = messages[i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
      throw ApiError(400, "'" + where + "': expected an object with a string 'role'", where);
    }
    turns.push_back({m["role"].get<std::string>(), openai_detail::message_content(m, i)});
  }
  infer::GenerationConfig config = openai_detail::sampling_config(body, model);
  for (int32_t id : of::boolean(body, "ignore_eos", false) ? std::vector<int32_t>{} : model.chat_eos_ids) {
    if (std::find(config.eos_ids.begin(), config.eos_ids.end(), id) == config.eos_ids.end()) config.eos_ids.push_back(id);
  }
  r.stream = of::boolean(body, "stream", false);
  if (of::present(body, "stream_options")) {
    if (!body["stream_options"].is_object()) of::bad("stream_options", "expected an object");
    r.include_usage = of::boolean(body["stream_options"], "include_usage", false);
  }
  r.n = of::integer(body, "n", 1, 1, 128);
  r.logprobs = of::boolean(body, "logprobs", false);
  r.top_logprobs = of::integer(body, "top_logprobs", 0, 0, 20);
  if (r.top_logprobs > 0 && !r.logprobs) of::bad("top_logprobs", "needs logprobs: true");
  std::string text;
  try {
    text = model.chat_template->render(turns, /*add_generation_prompt=*/true);
  } catch (const Error& e) {
    throw ApiError(400, std::string("the chat template failed on these messages: ") + e.what(), "messages");
  }
  std::vector<int32_t> prompt = model.tokenizer->encode(text, /*add_special_tokens=*/false);
  if (prompt.empty()) of::bad("messages", "the rendered conversation has no tokens");
  // max_completion_tokens replaces the deprecated max_tokens; without either, up to the context.
  const int64_t room = model.context_length > 0 ? std::max<int64_t>(1, model.context_length - static_cast<int64_t>(prompt.size()))
                                                : model.defaults.max_new_tokens;
  const char* field = of::present(body, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  const int64_t max_tokens = of::integer(body, field, room, 1, INT32_MAX);
  openai_detail::check_context(prompt, max_tokens, model, "messages", field);
  config.max_new_tokens = max_tokens;
  r.prompt_texts.push_back(text);
  for (int64_t j = 0; j < r.n; ++j) {
    EngineRequest e;
    e.prompt_ids = prompt;
    e.config = config;
    e.config.seed = config.seed + static_cast<uint64_t>(j);
    e.logprobs = r.logprobs;
    e.top_logprobs = r.top_logprobs;
    e.label = label;
    r.choices.push_back(std::move(e));
  }
  return r;
}

const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kCancelled: return "abort";
    case FinishReason::kError: return "error";
  }
  return "stop";
}

json models_body(const ServedModel& model) {
  json entry = {{"id", model.name}, {"object", "model"}, {"created", model.created}, {"owned_by", "forma"},
                {"max_model_len", model.context_length}};
  return {{"object", "list"}, {"data", json::array({entry})}};
}

json usage_json(const std::vector<FinishedEvent>& finished, int64_t n) {
  int64_t prompt = 0, completion = 0;
  for (size_t k = 0; k < finished.size(); ++k) {
    if (k % static_cast<size_t>(n) == 0) prompt += finished[k].prompt_tokens;  // each prompt once
    completion += static_cast<int64_t>(finished[k].result.ids.size());
  }
  return {{"prompt_tokens", prompt}, {"completion_tokens", completion}, {"total_tokens", prompt + completion}};
}

namespace openai_detail {

// The legacy completions logprobs object over `positions`, whose texts start at `offset`.
void append_completion_logprobs(json* out, const std::vector<PositionLogprobs>& positions, const ServedModel& model,
                                size_t* offset) {
  for (const auto& p : positions) {
    const std::string text = openai_detail::valid_utf8(openai_detail::token_text(model, p.token.id));
    (*out)["tokens"].push_back(text);
    (*out)["token_logprobs"].push_back(p.token.logprob);
    json top = json::object();
    for (const auto& alt : p.top) top[openai_detail::valid_utf8(openai_detail::token_text(model, alt.id))] = alt.logprob;
    (*out)["top_logprobs"].push_back(top);
    (*out)["text_offset"].push_back(*offset);
    *offset += text.size();
  }
}

json completion_logprobs(const ParsedRequest& request, size_t k, const FinishedEvent& finished,
                         const std::vector<TokenEvent>& tokens, const ServedModel& model) {
  json out = {{"tokens", json::array()}, {"token_logprobs", json::array()}, {"top_logprobs", json::array()},
              {"text_offset", json::array()}};
  size_t offset = 0;
  if (request.echo) {
    const auto& prompt = request.choices[k].prompt_ids;
    // The first prompt token has no logprob (nothing precedes it): null, as OpenAI reports it.
    const std::string first = openai_detail::valid_utf8(openai_detail::token_text(model, prompt[0]));
    out["tokens"].push_back(first);
    out["token_logprobs"].push_back(nullptr);
    out["top_logprobs"].push_back(nullptr);
    out["text_offset"].push_back(0);
    offset = first.size();
    openai_detail::append_completion_logprobs(&out, finished.prompt_logprobs, model, &offset);
  }
  std::vector<PositionLogprobs> generated;
  for (const auto& t : tokens) {
    if (t.logprobs) generated.push_back(*t.logprobs);
  }
  openai_detail::append_completion_logprobs(&out, generated, model, &offset);
  return out;
}

json chat_logprob_entry(const PositionLogprobs& p, const ServedModel& model) {
  auto item = [&](const TokenLogprob& t) {
    const std::string raw = openai_detail::token_text(model, t.id);
    return json{{"token", openai_detail::valid_utf8(raw)}, {"logprob", t.logprob}, {"bytes", openai_detail::bytes_of(raw)}};
  };
  json entry = item(p.token);
  entry["top_logprobs"] = json::array();
  for (const auto& alt : p.top) entry["top_logprobs"].push_back(item(alt));
  return entry;
}

std::string safe(const std::string& s) { return valid_utf8(s); }

}  // namespace openai_detail

json completion_body(const ParsedRequest& request, const std::vector<FinishedEvent>& finished,
                     const std::vector<std::vector<TokenEvent>>& tokens, const ServedModel& model, const std::string& id,
                     int64_t created) {
  json choices = json::array();
  for (size_t k = 0; k < finished.size(); ++k) {
    const size_t prompt = k / static_cast<size_t>(request.n);
    std::string text = request.echo ? request.prompt_texts[prompt] : "";
    text += finished[k].result.text;
    json choice = {{"index", k}, {"text", openai_detail::safe(text)}, {"finish_reason", finish_reason_name(finished[k].reason)}};
    choice["logprobs"] = request.logprobs ? openai_detail::completion_logprobs(request, k, finished[k], tokens[k], model) : json(nullptr);
    choices.push_back(choice);
  }
  return {{"id", id}, {"object", "text_completion"}, {"created", created}, {"model", model.name},
          {"choices", choices}, {"usage", usage_json(finished, request.n)}};
}

json chat_body(const ParsedRequest& request, const std::vector<FinishedEvent>& finished,
               const std::vector<std::vector<TokenEvent>>& tokens, const ServedModel& model, const std::string& id,
               int64_t created) {
  json choices = json::array();
  for (size_t k = 0; k < finished.size(); ++k) {
    json choice = {{"index", k},
                   {"message", {{"role", "assistant"}, {"content", openai_detail::safe(finished[k].result.text)}}},
                   {"finish_reason", finish_reason_name(finished[k].reason)}};
    if (request.logprobs) {
      json content = json::array();
      for (const auto& t : tokens[k]) {
        if (t.logprobs) content.push_back(openai_detail::chat_logprob_entry(*t.logprobs, model));
      }
      choice["logprobs"] = {{"content", content}, {"refusal", nullptr}};
    } else {
      choice["logprobs"] = nullptr;
    }
    choices.push_back(choice);
  }
  return {{"id", id}, {"object", "chat.completion"}, {"created", created}, {"model", model.name},
          {"choices", choices}, {"usage", usage_json(finished, request.n)}};
}

json completion_chunk(const ParsedRequest& request, int64_t index, const std::string& text, const TokenEvent* token,
                      const char* finish, const ServedModel& model, const std::string& id, int64_t created) {
  json choice = {{"index", index}, {"text", openai_detail::safe(text)}, {"finish_reason", finish ? json(finish) : json(nullptr)}};
  if (request.logprobs && token && token->logprobs) {
    json lp = {{"tokens", json::array()}, {"token_logprobs", json::array()}, {"top_logprobs", json::array()},
               {"text_offset", json::array()}};
    size_t offset = 0;
    openai_detail::append_completion_logprobs(&lp, {*token->logprobs}, model, &offset);
    choice["logprobs"] = lp;
  } else {
    choice["logprobs"] = nullptr;
  }
  return {{"id", id}, {"object", "text_completion"}, {"created", created}, {"model", model.name},
          {"choices", json::array({choice})}};
}

json chat_chunk(const ParsedRequest& request, int64_t index, const json& delta, const TokenEvent* token,
                const char* finish, const ServedModel& model, const std::string& id, int64_t created) {
  json choice = {{"index", index}, {"delta", delta}, {"finish_reason", finish ? json(finish) : json(nullptr)}};
  if (request.logprobs && token && token->logprobs) {
    choice["logprobs"] = {{"content", json::array({openai_detail::chat_logprob_entry(*token->logprobs, model)})}, {"refusal", nullptr}};
  } else {
    choice["logprobs"] = nullptr;
  }
  return {{"id", id}, {"object", "chat.completion.chunk"}, {"created", created}, {"model", model.name},
          {"choices", json::array({choice})}};
}

json usage_chunk(const ParsedRequest& request, const std::vector<FinishedEvent>& finished, const ServedModel& model,
                 const std::string& id, int64_t created) {
  return {{"id", id},
          {"object", request.endpoint == Endpoint::kChat ? "chat.completion.chunk" : "text_completion"},
          {"created", created},
          {"model", model.name},
          {"choices", json::array()},
          {"usage", usage_json(finished, request.n)}};
}

}  // namespace forma::serve

// The OpenAI API's request parsing, validation and response bodies, without sockets: every
// malformed request is an ApiError with OpenAI's status, param and code; prompts and chat
// messages become the token ids a hand computation gives.
#include <gtest/gtest.h>

#include "forma/serve/metrics.h"
#include "forma/serve/openai_api.h"
#include "forma/serve/sse.h"

namespace {

using forma::serve::ApiError;
using nlohmann::json;

// id = byte value + 1 (0 is BOS, which add_special_tokens puts first); 300 = EOS.
class ByteTokenizer : public forma::tok::Tokenizer {
 public:
  std::vector<int32_t> encode(std::string_view text, bool add_special) const override {
    std::vector<int32_t> ids;
    if (add_special) ids.push_back(0);
    for (unsigned char c : text) ids.push_back(c + 1);
    return ids;
  }
  std::string decode(const std::vector<int32_t>& ids, bool) const override {
    std::string s;
    for (int32_t id : ids)
      if (id >= 1 && id <= 256) s += static_cast<char>(id - 1);
    return s;
  }
  int32_t vocab_size() const override { return 301; }
  std::optional<int32_t> token_to_id(std::string_view) const override { return std::nullopt; }
  std::string id_to_token(int32_t id) const override { return decode({id}, false); }
  std::optional<int32_t> bos_id() const override { return 0; }
  std::optional<int32_t> eos_id() const override { return 300; }
};

struct Fixture {
  ByteTokenizer tokenizer;
  forma::chat::ChatTemplate chat_template{
      "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}{% if add_generation_prompt %}<a>{% endif %}",
      nlohmann::ordered_json::object()};
  forma::serve::ServedModel model;
  Fixture() {
    model.name = "tiny";
    model.context_length = 32;
    model.tokenizer = &tokenizer;
    model.chat_template = &chat_template;
    model.defaults.eos_ids = {300};
    model.chat_eos_ids = {299};
  }
};

// The ApiError a completion request body raises (status 0 when none).
ApiError completion_error(const std::string& body) {
  Fixture f;
  try {
    forma::serve::parse_completion_request(forma::serve::parse_json_body(body), f.model, "test");
  } catch (const ApiError& e) {
    return e;
  }
  return ApiError(0, "(no error)");
}

TEST(OpenAIApi, MalformedBodiesAre400) {
  EXPECT_EQ(completion_error("{").status, 400);
  EXPECT_EQ(completion_error("[1, 2]").status, 400);
  EXPECT_EQ(completion_error("{\"prompt\": \"hi\"}").param, "model");
}

TEST(OpenAIApi, WrongTypesAndRangesName400Params) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"\"temperature\": \"hot\"", "temperature"},  {"\"temperature\": 3", "temperature"},
      {"\"max_tokens\": -1", "max_tokens"},         {"\"max_tokens\": 1.5", "max_tokens"},
      {"\"max_tokens\": 0", "max_tokens"},          {"\"n\": 0", "n"},
      {"\"stop\": [\"a\",\"b\",\"c\",\"d\",\"e\"]", "stop"}, {"\"stop\": 3", "stop"},
      {"\"stop\": \"\"", "stop"},                   {"\"logprobs\": 21", "logprobs"},
      {"\"top_p\": 0", "top_p"},                    {"\"stream\": \"yes\"", "stream"},
      {"\"presence_penalty\": 1", "presence_penalty"}, {"\"seed\": \"x\"", "seed"}};
  for (const auto& [field, param] : cases) {
    const ApiError e = completion_error("{\"model\": \"tiny\", \"prompt\": \"hi\", " + field + "}");
    EXPECT_EQ(e.status, 400) << field;
    EXPECT_EQ(e.param, param) << field << ": " << e.what();
    const json body = forma::serve::error_body(e);
    EXPECT_EQ(body["error"]["type"], "invalid_request_error");
    EXPECT_EQ(body["error"]["param"], param);
  }
  for (const char* prompt : {"[]", "3", "[[1], 2.5]", "[-1]", "{}"}) {
    EXPECT_EQ(completion_error(std::string("{\"model\": \"tiny\", \"prompt\": ") + prompt + "}").param, "prompt") << prompt;
  }
}

TEST(OpenAIApi, UnknownModelIs404) {
  const ApiError e = completion_error("{\"model\": \"gpt-4\", \"prompt\": \"hi\"}");
  EXPECT_EQ(e.status, 404);
  EXPECT_EQ(e.code, "model_not_found");
  EXPECT_EQ(forma::serve::error_body(e)["error"]["code"], "model_not_found");
}

TEST(OpenAIApi, TooManyTokensForTheContext) {
  // 32 positions: "hi" is BOS + 2 tokens; 3 + 29 fits, 3 + 30 does not.
  EXPECT_EQ(completion_error("{\"model\": \"tiny\", \"prompt\": \"hi\", \"max_tokens\": 29}").status, 0);
  const ApiError e = completion_error("{\"model\": \"tiny\", \"prompt\": \"hi\", \"max_tokens\": 30}");
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.code, "context_length_exceeded");
  EXPECT_EQ(e.param, "max_tokens");
  const ApiError long_prompt = completion_error("{\"model\": \"tiny\", \"prompt\": \"" + std::string(40, 'x') + "\"}");
  EXPECT_EQ(long_prompt.param, "prompt");
}

TEST(OpenAIApi, PromptFormsAndChoices) {
  Fixture f;
  const json body = json::parse(R"({"model": "tiny", "prompt": ["ab", [5, 6, 7]], "n": 2, "seed": 10,
      "max_tokens": 3, "temperature": 0.5, "top_k": 4, "min_p": 0.1, "stop": "x", "echo": true, "logprobs": 2})");
  auto r = forma::serve::parse_completion_request(body, f.model, "t");
  ASSERT_EQ(r.choices.size(), 4u);  // prompt i, sample j -> choice 2i + j
  EXPECT_EQ(r.choices[0].prompt_ids, (std::vector<int32_t>{0, 'a' + 1, 'b' + 1}));
  EXPECT_EQ(r.choices[1].prompt_ids, r.choices[0].prompt_ids);
  EXPECT_EQ(r.choices[2].prompt_ids, (std::vector<int32_t>{5, 6, 7}));
  EXPECT_EQ(r.choices[0].config.seed, 10u);
  EXPECT_EQ(r.choices[1].config.seed, 11u);  // samples of one prompt differ
  EXPECT_EQ(r.choices[0].config.max_new_tokens, 3);
  EXPECT_DOUBLE_EQ(r.choices[0].config.sampling.temperature, 0.5);
  EXPECT_EQ(r.choices[0].config.sampling.top_k, 4);
  EXPECT_EQ(r.choices[0].config.stop_strings, (std::vector<std::string>{"x"}));
  EXPECT_EQ(r.choices[0].config.eos_ids, (std::vector<int32_t>{300}));
  EXPECT_TRUE(r.choices[0].echo_logprobs);
  EXPECT_EQ(r.choices[0].top_logprobs, 2);
  EXPECT_EQ(r.prompt_texts[0], "ab");
  // Scoring only, as lm-evaluation-harness asks: echo with max_tokens 0.
  auto score = forma::serve::parse_completion_request(
      json::parse(R"({"model": "tiny", "prompt": "ab", "max_tokens": 0, "echo": true, "logprobs": 1})"), f.model, "t");
  EXPECT_EQ(score.choices[0].config.max_new_tokens, 0);
}

TEST(OpenAIApi, ChatRendersTheTemplate) {
  Fixture f;
  const json body = json::parse(R"({"model": "tiny", "messages": [{"role": "system", "content": "S"},
      {"role": "user", "content": [{"type": "text", "text": "h"}, {"type": "text", "text": "i"}]}],
      "max_tokens": 50, "max_completion_tokens": 4, "logprobs": true, "top_logprobs": 3})");
  auto r = forma::serve::parse_chat_request(body, f.model, "t");
  ASSERT_EQ(r.choices.size(), 1u);
  EXPECT_EQ(r.choices[0].prompt_ids, f.tokenizer.encode("<system>S<user>hi<a>", false));
  EXPECT_EQ(r.choices[0].config.max_new_tokens, 4);  // max_completion_tokens wins
  EXPECT_EQ(r.choices[0].config.eos_ids, (std::vector<int32_t>{300, 299}));
  EXPECT_TRUE(r.choices[0].logprobs);
  EXPECT_EQ(r.choices[0].top_logprobs, 3);
  // Without a limit the reply may fill the context: 32 - 20 prompt tokens.
  auto open = forma::serve::parse_chat_request(
      json::parse(R"({"model": "tiny", "messages": [{"role": "user", "content": "hello"}]})"), f.model, "t");
  EXPECT_EQ(open.choices[0].config.max_new_tokens, 32 - static_cast<int64_t>(open.choices[0].prompt_ids.size()));
  for (const char* messages : {"[]", "\"hi\"", "[{\"content\": \"x\"}]", "[{\"role\": \"user\", \"content\": 5}]"}) {
    try {
      forma::serve::parse_chat_request(json::parse(std::string("{\"model\": \"tiny\", \"messages\": ") + messages + "}"),
                                       f.model, "t");
      ADD_FAILURE() << messages << " was accepted";
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status, 400) << messages;
      EXPECT_EQ(std::string(e.param).rfind("messages", 0), 0u) << messages << ": " << e.param;
    }
  }
}

TEST(OpenAIApi, EchoLogprobsLeadWithANullForTheFirstToken) {
  Fixture f;
  auto r = forma::serve::parse_completion_request(
      json::parse(R"({"model": "tiny", "prompt": [1, 2, 3], "max_tokens": 1, "echo": true, "logprobs": 1})"), f.model, "t");
  forma::serve::FinishedEvent fin;
  fin.prompt_tokens = 3;
  fin.result.ids = {4};
  fin.result.text = "\x03";
  fin.prompt_logprobs = {{{2, -1.5f}, {{2, -1.5f}}}, {{3, -0.25f}, {{7, -0.1f}}}};
  forma::serve::TokenEvent t;
  t.id = 4;
  t.logprobs = forma::serve::PositionLogprobs{{4, -2.0f}, {{4, -2.0f}}};
  const json body = forma::serve::completion_body(r, {fin}, {{t}}, f.model, "cmpl-1", 5);
  const json& lp = body["choices"][0]["logprobs"];
  ASSERT_EQ(lp["token_logprobs"].size(), 4u);
  EXPECT_TRUE(lp["token_logprobs"][0].is_null());
  EXPECT_TRUE(lp["top_logprobs"][0].is_null());
  EXPECT_FLOAT_EQ(lp["token_logprobs"][1].get<float>(), -1.5f);
  EXPECT_FLOAT_EQ(lp["token_logprobs"][2].get<float>(), -0.25f);
  EXPECT_FLOAT_EQ(lp["token_logprobs"][3].get<float>(), -2.0f);
  EXPECT_EQ(lp["text_offset"], json({0, 1, 2, 3}));
  EXPECT_EQ(body["choices"][0]["text"], std::string("\x00\x01\x02\x03", 4));
  EXPECT_EQ(body["usage"], json({{"prompt_tokens", 3}, {"completion_tokens", 1}, {"total_tokens", 4}}));
}

TEST(ServeMetrics, PrometheusHistogramsAreCumulative) {
  forma::serve::Metrics m;
  m.request("/v1/completions", 200);
  m.request("/v1/completions", 200);
  m.request("/v1/completions", 400);
  m.generation(5, 3, 0.5, 0.75);  // TPOT (0.75 - 0.5) / 2 = 0.125
  m.generation(7, 1, 3.0, 3.0);
  forma::serve::EngineStats stats;
  stats.waiting = 2;
  stats.kv_blocks_total = 8;
  stats.kv_blocks_used = 2;
  const std::string text = m.render(stats);
  auto has = [&](const std::string& line) { return text.find(line + "\n") != std::string::npos; };
  EXPECT_TRUE(has("forma_requests_total{endpoint=\"/v1/completions\",status=\"200\"} 2")) << text;
  EXPECT_TRUE(has("forma_requests_total{endpoint=\"/v1/completions\",status=\"400\"} 1"));
  EXPECT_TRUE(has("forma_prompt_tokens_total 12"));
  EXPECT_TRUE(has("forma_generation_tokens_total 4"));
  EXPECT_TRUE(has("forma_time_to_first_token_seconds_bucket{le=\"0.25\"} 0"));
  EXPECT_TRUE(has("forma_time_to_first_token_seconds_bucket{le=\"0.5\"} 1"));
  EXPECT_TRUE(has("forma_time_to_first_token_seconds_bucket{le=\"2.5\"} 1"));
  EXPECT_TRUE(has("forma_time_to_first_token_seconds_bucket{le=\"5\"} 2"));
  EXPECT_TRUE(has("forma_time_to_first_token_seconds_bucket{le=\"+Inf\"} 2"));
  EXPECT_TRUE(has("forma_time_to_first_token_seconds_count 2"));
  EXPECT_TRUE(has("forma_time_per_output_token_seconds_count 1"));  // one token: no TPOT
  EXPECT_TRUE(has("forma_time_per_output_token_seconds_bucket{le=\"0.1\"} 0"));
  EXPECT_TRUE(has("forma_time_per_output_token_seconds_bucket{le=\"0.25\"} 1"));
  EXPECT_TRUE(has("forma_num_requests_waiting 2"));
  EXPECT_TRUE(has("forma_kv_cache_usage_ratio 0.25"));
}

}  // namespace

namespace {

// An SSE event is one `data:` line: a newline inside a string must stay escaped, and invalid
// UTF-8 (a token that ends inside a character) must not break the JSON.
TEST(ServeSse, OneLinePerEventEvenWithNewlinesAndBadBytes) {
  const std::string event = forma::serve::sse_event({{"text", "a\nb\xC3"}});
  ASSERT_EQ(event.rfind("data: ", 0), 0u);
  ASSERT_GE(event.size(), 8u);
  EXPECT_EQ(event.substr(event.size() - 2), "\n\n");
  EXPECT_EQ(event.find('\n'), event.size() - 2);
  const json parsed = json::parse(event.substr(6, event.size() - 8));
  EXPECT_EQ(parsed["text"].get<std::string>().substr(0, 3), "a\nb");
  EXPECT_EQ(forma::serve::sse_done(), "data: [DONE]\n\n");
}

}  // namespace

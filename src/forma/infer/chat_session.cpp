#include "forma/infer/chat_session.h"

#include <algorithm>

#include "forma/core/error.h"

namespace forma::infer {

namespace {

void add_end_of_turn_id(std::vector<int32_t>* ids, std::optional<int32_t> id) {
  if (id && std::find(ids->begin(), ids->end(), *id) == ids->end()) ids->push_back(*id);
}

}  // namespace

ChatSession::ChatSession(CausalLM model, const tok::Tokenizer& tokenizer, chat::ChatTemplate chat_template,
                         GenerationConfig config)
    : model_(std::move(model)), tokenizer_(tokenizer), template_(std::move(chat_template)), config_(std::move(config)) {
  add_end_of_turn_id(&config_.eos_ids, tokenizer_.eos_id());
  const auto& special = template_.special_tokens();
  if (special.contains("eos_token") && special["eos_token"].is_string()) {
    add_end_of_turn_id(&config_.eos_ids, tokenizer_.token_to_id(special["eos_token"].get<std::string>()));
  }
  config_.validate();
}

void ChatSession::set_system_prompt(std::string text) {
  if (text.empty()) {
    system_.reset();
  } else {
    system_ = std::move(text);
  }
}

void ChatSession::reset() {
  turns_.clear();
  replies_ = 0;
}

std::vector<chat::ChatMessage> ChatSession::messages() const {
  std::vector<chat::ChatMessage> out;
  if (system_) out.push_back({"system", *system_});
  out.insert(out.end(), turns_.begin(), turns_.end());
  return out;
}

std::vector<chat::ChatMessage> ChatSession::messages_with(const std::string& user_text) const {
  std::vector<chat::ChatMessage> out = messages();
  out.push_back({"user", user_text});
  return out;
}

std::vector<int32_t> ChatSession::prompt_ids(const std::string& user_text) const {
  const std::string text = template_.render(messages_with(user_text), /*add_generation_prompt=*/true);
  return tokenizer_.encode(text, /*add_special_tokens=*/false);
}

ChatReply ChatSession::send(const std::string& user_text, const GenerationCallbacks& callbacks) {
  ChatReply reply;
  reply.prompt_ids = prompt_ids(user_text);
  GenerationConfig config = config_;
  config.seed = config_.seed + replies_;
  reply.result = generate(model_, reply.prompt_ids, config, &tokenizer_, callbacks);
  turns_.push_back({"user", user_text});
  turns_.push_back({"assistant", reply.result.text});
  ++replies_;
  return reply;
}

}  // namespace forma::infer

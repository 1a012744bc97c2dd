// A conversation with a model through its chat template: the history (an optional system prompt,
// then user and assistant turns) is rendered with the template as transformers'
// apply_chat_template(messages, add_generation_prompt=True, tokenize=True) does (the template
// writes the special tokens itself, so the tokenizer adds none), and the reply is generated with
// the KV cache until an end-of-turn token. `forma chat` is a terminal loop around this class.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "forma/chat/chat_template.h"
#include "forma/infer/generate.h"
#include "forma/model/causal_lm.h"
#include "forma/tokenizer/tokenizer.h"

namespace forma::infer {

struct ChatReply {
  std::vector<int32_t> prompt_ids;  // what the model was given: the rendered conversation, encoded
  GenerationResult result;          // the reply (result.text joins the history)
};

class ChatSession {
 public:
  // `model` and `tokenizer` must outlive the session. `config.eos_ids` gains the end-of-turn
  // tokens: the tokenizer's EOS and the template's eos_token (tokenizer_config.json), as
  // transformers' chat pipelines stop on either.
  ChatSession(CausalLM model, const tok::Tokenizer& tokenizer, chat::ChatTemplate chat_template,
              GenerationConfig config);

  // Sets the system prompt, which leads every rendering from now on; an empty text removes it
  // (templates with a default system prompt, like Qwen2's, then use theirs).
  void set_system_prompt(std::string text);
  // Forgets the user and assistant turns; the system prompt stays.
  void reset();

  // The token ids the model would be given if the user said `user_text` now.
  std::vector<int32_t> prompt_ids(const std::string& user_text) const;
  // Renders, generates (streaming through `callbacks`) and, when that succeeded, appends the user
  // message and the reply to the history. Errors (a template's raise_exception, a conversation
  // longer than the model's context) leave the history as it was.
  ChatReply send(const std::string& user_text, const GenerationCallbacks& callbacks = {});

  // The system prompt (if any), then the turns.
  std::vector<chat::ChatMessage> messages() const;
  const GenerationConfig& config() const { return config_; }

 private:
  std::vector<chat::ChatMessage> messages_with(const std::string& user_text) const;

  CausalLM model_;
  const tok::Tokenizer& tokenizer_;
  chat::ChatTemplate template_;
  GenerationConfig config_;
  std::optional<std::string> system_;
  std::vector<chat::ChatMessage> turns_;
  uint64_t replies_ = 0;  // sampled replies use seed + this, so turns do not repeat one stream
};

}  // namespace forma::infer

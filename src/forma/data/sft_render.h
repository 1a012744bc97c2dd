// SFT records into token ids and a loss mask: conversations through the model's chat template
// (chat/chat_template.h), prompt/completion pairs and text as plain text.
//
// Which tokens of a conversation are trained on: the assistant turns. Turn k (an assistant message)
// spans the characters of the rendered conversation from the end of the prefix rendered with
// add_generation_prompt=true (messages before k, then the assistant header) to the end of the
// prefix rendered up to and including k with add_generation_prompt=false, cut where it stops
// agreeing with the whole conversation's text. So it holds the assistant's reply and the template's
// end-of-turn text (`<|im_end|>\n`, `<|eot_id|>`), not the role header. The whole conversation is
// tokenized once, as it would be at inference, and a token is trained on when its first byte lies
// in an assistant span. A template whose prefixes do not render as prefixes of the whole (one that
// rewrites earlier turns when later ones come) cannot be masked this way: that is an error.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "forma/chat/chat_template.h"
#include "forma/data/sft_records.h"
#include "forma/tokenizer/tokenizer.h"

namespace forma::data {

struct SftTokens {
  std::vector<int32_t> ids;
  // mask[i] = 1 when ids[i] is a training target (predicted from ids[0..i)); mask[0] never counts,
  // since no token predicts the first.
  std::vector<uint8_t> mask;
};

struct SftRenderOptions {
  bool train_on_all = false;        // every token is a target (not only assistant turns / completions)
  bool add_special_tokens = false;  // prompt_completion and text: the tokenizer's post-processor (BOS)
                                    // on the prompt / text. Chat templates write their own BOS.
  bool append_eos = true;           // prompt_completion and text: EOS after the completion (trained on)
};

// A conversation rendered, with the character spans [begin, end) of its assistant turns.
struct RenderedChat {
  std::string text;
  std::vector<std::pair<size_t, size_t>> assistant_spans;
};
// Throws RecordError (template errors, a template that is not prefix-stable).
RenderedChat render_with_assistant_spans(const chat::ChatTemplate& chat_template,
                                         const nlohmann::ordered_json& messages);

// The byte offset in `text` where each token of `ids` (= tokenizer.encode(text)) starts. Throws
// forma::Error when the tokens do not decode piece by piece back to `text`.
std::vector<size_t> token_offsets(const tok::Tokenizer& tokenizer, const std::vector<int32_t>& ids,
                                  const std::string& text);

class SftRenderer {
 public:
  // `chat_template` is needed by conversations only (an error names the record otherwise).
  SftRenderer(const tok::Tokenizer& tokenizer, std::optional<chat::ChatTemplate> chat_template,
              SftRenderOptions options);
  // Throws RecordError for a record that cannot be rendered.
  SftTokens render(const SftRecord& record) const;

 private:
  SftTokens render_chat(const SftRecord& record) const;
  SftTokens render_plain(const SftRecord& record) const;
  const tok::Tokenizer& tokenizer_;
  std::optional<chat::ChatTemplate> template_;
  SftRenderOptions options_;
};

}  // namespace forma::data

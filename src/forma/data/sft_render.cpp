#include "forma/data/sft_render.h"

#include <algorithm>

namespace forma::data {

namespace {

size_t common_prefix_length(std::string_view a, std::string_view b) {
  size_t n = std::min(a.size(), b.size()), i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

nlohmann::ordered_json first_chat_messages(const nlohmann::ordered_json& messages, size_t count) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (size_t i = 0; i < count; ++i) out.push_back(messages[i]);
  return out;
}

}  // namespace

RenderedChat render_with_assistant_spans(const chat::ChatTemplate& chat_template,
                                         const nlohmann::ordered_json& messages) {
  RenderedChat out;
  try {
    out.text = chat_template.render_json(messages, /*add_generation_prompt=*/false);
    for (size_t k = 0; k < messages.size(); ++k) {
      if (messages[k]["role"] != "assistant") continue;
      // Everything up to the assistant header of turn k (the prompt a model would be given).
      const std::string before = chat_template.render_json(first_chat_messages(messages, k), true);
      if (out.text.compare(0, before.size(), before) != 0) {
        throw RecordError(fmt::format(
            "the chat template does not render the conversation before messages[{}] (with the generation "
            "prompt) as the start of the whole conversation, so the assistant turn cannot be located; "
            "train on everything (--train-on-all) or use another template", k));
      }
      // Up to the end of turn k: its reply and end-of-turn text, as far as the whole agrees.
      const std::string through = chat_template.render_json(first_chat_messages(messages, k + 1), false);
      const size_t end = before.size() + common_prefix_length(std::string_view(through).substr(std::min(before.size(), through.size())),
                                                       std::string_view(out.text).substr(before.size()));
      out.assistant_spans.emplace_back(before.size(), end);
    }
  } catch (const RecordError&) {
    throw;
  } catch (const Error& e) {
    // raise_exception (e.g. roles that do not alternate) and template errors are the record's.
    throw RecordError(fmt::format("chat template: {}", e.what()));
  }
  return out;
}

std::vector<size_t> token_offsets(const tok::Tokenizer& tokenizer, const std::vector<int32_t>& ids,
                                  const std::string& text) {
  // Byte-level tokenizers decode token by token into the bytes they encoded (tokenizer.h:
  // decode(encode(x)) == x, invalid UTF-8 pieces included), so the pieces' lengths are the offsets.
  std::vector<size_t> offsets;
  offsets.reserve(ids.size());
  size_t at = 0;
  for (int32_t id : ids) {
    offsets.push_back(at);
    std::string piece = tokenizer.decode({id});
    check(text.compare(at, piece.size(), piece) == 0,
          "the tokenizer does not decode token by token back to the text (token {} at byte {}), so the "
          "assistant tokens cannot be located; train on everything (--train-on-all)", id, at);
    at += piece.size();
  }
  check(at == text.size(), "the tokens decode to {} of the text's {} bytes", at, text.size());
  return offsets;
}

SftRenderer::SftRenderer(const tok::Tokenizer& tokenizer, std::optional<chat::ChatTemplate> chat_template,
                         SftRenderOptions options)
    : tokenizer_(tokenizer), template_(std::move(chat_template)), options_(options) {}

SftTokens SftRenderer::render(const SftRecord& record) const {
  return record.is_chat() ? render_chat(record) : render_plain(record);
}

SftTokens SftRenderer::render_chat(const SftRecord& record) const {
  if (!template_) throw RecordError("a conversation, but the tokenizer has no chat template (give --chat-template)");
  SftTokens out;
  if (options_.train_on_all) {
    std::string text;
    try {
      text = template_->render_json(record.messages, false);
    } catch (const Error& e) {
      throw RecordError(fmt::format("chat template: {}", e.what()));
    }
    out.ids = tokenizer_.encode(text, false);
    out.mask.assign(out.ids.size(), 1);
    return out;
  }
  RenderedChat chat = render_with_assistant_spans(*template_, record.messages);
  // The template writes BOS and every special token itself, as apply_chat_template(tokenize=True) does.
  out.ids = tokenizer_.encode(chat.text, false);
  std::vector<size_t> offsets;
  try {
    offsets = token_offsets(tokenizer_, out.ids, chat.text);
  } catch (const Error& e) {
    throw RecordError(e.what());
  }
  out.mask.assign(out.ids.size(), 0);
  size_t span = 0;
  for (size_t i = 0; i < out.ids.size(); ++i) {
    while (span < chat.assistant_spans.size() && offsets[i] >= chat.assistant_spans[span].second) ++span;
    if (span < chat.assistant_spans.size() && offsets[i] >= chat.assistant_spans[span].first) out.mask[i] = 1;
  }
  return out;
}

SftTokens SftRenderer::render_plain(const SftRecord& record) const {
  SftTokens out;
  const bool prompt = record.format == SftFormat::prompt_completion;
  if (prompt) {
    // Prompt and completion are encoded apart, so the boundary is exact (TRL encodes them apart too).
    out.ids = tokenizer_.encode(record.prompt, options_.add_special_tokens);
    out.mask.assign(out.ids.size(), options_.train_on_all ? 1 : 0);
  }
  std::vector<int32_t> rest = tokenizer_.encode(record.completion, !prompt && options_.add_special_tokens);
  if (options_.append_eos) {
    auto eos = tokenizer_.eos_id();
    if (!eos) throw RecordError("the tokenizer has no EOS token to end the completion with");
    rest.push_back(*eos);
  }
  out.ids.insert(out.ids.end(), rest.begin(), rest.end());
  out.mask.resize(out.ids.size(), 1);
  return out;
}

}  // namespace forma::data

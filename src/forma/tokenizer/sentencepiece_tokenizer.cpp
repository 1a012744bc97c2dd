#include "forma/tokenizer/sentencepiece_tokenizer.h"

#include <sentencepiece_processor.h>

#include <algorithm>
#include <unordered_set>

#include "forma/core/error.h"
#include "forma/core/files.h"
#include "forma/tokenizer/added_tokens.h"
#include "forma/tokenizer/unicode.h"

namespace forma::tok {

namespace {

const char* const kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

class SentencePieceTokenizer : public Tokenizer {
 public:
  SentencePieceTokenizer(const std::string& serialized, const std::string& source) : source_(source) {
    auto status = sp_.LoadFromSerializedProto(serialized);
    check(status.ok(), "{}: not a SentencePiece model: {}", source, status.ToString());
    check(sp_.GetPieceSize() > 0, "{}: the SentencePiece model has no pieces: the tokenizer has no tokens to encode text with",
          source);
    std::vector<AddedToken> controls;
    for (int id = 0; id < sp_.GetPieceSize(); ++id) {
      if (!sp_.IsControl(id)) continue;
      controls.push_back({sp_.IdToPiece(id), id, true});
      control_.insert(id);
    }
    controls_ = AddedTokenMatcher(std::move(controls));
    for (int b = 0; b < 256; ++b) {
      int id = sp_.PieceToId(byte_token(static_cast<uint8_t>(b)));
      byte_ids_[b] = sp_.IsByte(id) ? id : -1;
    }
  }

  // Control pieces written in the text (<s>, </s>) are recognised; the rest goes to SentencePiece.
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const override {
    std::vector<int32_t> ids;
    if (add_special_tokens && sp_.bos_id() >= 0) ids.push_back(sp_.bos_id());
    for (const TextSegment& s : controls_.split(text)) {
      if (s.token >= 0) {
        ids.push_back(controls_.token(s.token).id);
      } else {
        encode_plain(text.substr(s.begin, s.end - s.begin), ids);
      }
    }
    return ids;
  }

  // Pieces are joined with U+2581 read as a space, the first one's leading space dropped, and
  // byte pieces emitted as raw bytes (so invalid UTF-8 survives; libsentencepiece would write U+FFFD).
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const override {
    std::string out;
    bool at_start = true;
    for (int32_t id : ids) {
      check(id >= 0 && id < sp_.GetPieceSize(), "{}: token id {} is not in the vocabulary (size {})", source_, id,
            sp_.GetPieceSize());
      if (control_.count(id)) {
        if (!skip_special_tokens) out += sp_.IdToPiece(id);
        continue;
      }
      if (sp_.IsByte(id)) {
        out += static_cast<char>(*parse_byte_token(sp_.IdToPiece(id)));
      } else if (sp_.IsUnknown(id)) {
        out += " \xE2\x81\x87 ";  // SentencePiece's surface for <unk>
      } else {
        std::string piece = sp_.IdToPiece(id);
        for (size_t pos = 0; pos < piece.size();) {
          if (piece.compare(pos, 3, "\xE2\x96\x81") == 0) {
            if (!(at_start && pos == 0 && out.empty())) out += ' ';
            pos += 3;
          } else {
            out += piece[pos++];
          }
        }
      }
      at_start = false;
    }
    return out;
  }

  int32_t vocab_size() const override { return sp_.GetPieceSize(); }
  std::optional<int32_t> token_to_id(std::string_view token) const override {
    int id = sp_.PieceToId(std::string(token));
    if (id == sp_.unk_id() && token != sp_.IdToPiece(id)) return std::nullopt;
    return id;
  }
  std::string id_to_token(int32_t id) const override {
    check(id >= 0 && id < sp_.GetPieceSize(), "{}: token id {} is not in the vocabulary", source_, id);
    return sp_.IdToPiece(id);
  }
  std::optional<int32_t> bos_id() const override { return sp_.bos_id() >= 0 ? std::optional<int32_t>(sp_.bos_id()) : std::nullopt; }
  std::optional<int32_t> eos_id() const override { return sp_.eos_id() >= 0 ? std::optional<int32_t>(sp_.eos_id()) : std::nullopt; }

 private:
  // SentencePiece only takes valid UTF-8. Each invalid byte is replaced by U+FFFD for encoding,
  // and the byte pieces SentencePiece falls back to for that character are replaced by the
  // original byte's piece.
  void encode_plain(std::string_view text, std::vector<int32_t>& ids) const {
    std::string valid;
    std::vector<std::pair<size_t, uint8_t>> invalid;  // (offset in `valid`, original byte)
    for_each_utf8_run(text, [&](size_t b, size_t e, bool ok) {
      if (!ok) {
        invalid.emplace_back(valid.size(), static_cast<uint8_t>(text[b]));
        valid += kReplacementChar;
      } else {
        valid.append(text.substr(b, e - b));
      }
    });
    if (invalid.empty()) {
      for (int id : sp_.EncodeAsIds(valid)) ids.push_back(id);
      return;
    }
    // Every piece (or run of byte pieces) whose span covers a substituted character is replaced by
    // the byte pieces of the original bytes of that span (Llama 2 even has pieces for U+FFFD).
    auto original_offset = [&](size_t offset) {
      size_t before = std::lower_bound(invalid.begin(), invalid.end(), std::make_pair(offset, uint8_t{0})) - invalid.begin();
      return offset - 2 * before;  // each substituted character is 3 bytes for 1 original byte
    };
    auto spt = sp_.EncodeAsImmutableProto(valid);
    auto pieces = spt.pieces();
    for (size_t i = 0; i < pieces.size();) {
      size_t begin = pieces[i].begin(), end = pieces[i].end(), j = i + 1;
      if (sp_.IsByte(pieces[i].id()))
        for (; j < pieces.size() && sp_.IsByte(pieces[j].id()); ++j) end = std::max<size_t>(end, pieces[j].end());
      auto first_invalid = std::lower_bound(invalid.begin(), invalid.end(), std::make_pair(begin, uint8_t{0}));
      bool covers_invalid = first_invalid != invalid.end() && first_invalid->first < end;
      bool bytes_known = true;
      for (size_t k = original_offset(begin); covers_invalid && k < original_offset(end); ++k)
        bytes_known = bytes_known && byte_ids_[static_cast<uint8_t>(text[k])] >= 0;
      if (covers_invalid && bytes_known) {
        for (size_t k = original_offset(begin); k < original_offset(end); ++k)
          ids.push_back(byte_ids_[static_cast<uint8_t>(text[k])]);
      } else {
        for (size_t k = i; k < j; ++k) ids.push_back(static_cast<int32_t>(pieces[k].id()));
      }
      i = j;
    }
  }

  std::string source_;
  sentencepiece::SentencePieceProcessor sp_;
  AddedTokenMatcher controls_;
  std::unordered_set<int32_t> control_;
  int32_t byte_ids_[256];
};

}  // namespace

std::unique_ptr<Tokenizer> load_sentencepiece_from_bytes(const std::string& serialized, const std::string& source) {
  return std::make_unique<SentencePieceTokenizer>(serialized, source);
}

std::unique_ptr<Tokenizer> load_sentencepiece(const std::string& model_path) {
  return load_sentencepiece_from_bytes(read_file(model_path), model_path);
}

}  // namespace forma::tok

// `forma data prepare --sft`: SFT records (sft_records.h) from JSON lines, JSON arrays or text
// files, rendered into ids and a loss mask (sft_render.h) and written as an SFT dataset
// (sft_dataset.h). Malformed records stop with "FILE:LINE: what" naming the field, or with
// skip_bad are skipped and counted, as pretraining preparation does. Samples longer than
// max_length are truncated (keeping the start) or dropped, and counted; a sample left with no
// trained token is dropped and counted too.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "forma/data/document_reader.h"
#include "forma/data/indexed_dataset.h"
#include "forma/data/sft_render.h"

namespace forma::data {

enum class Overlong { truncate, drop };

struct SftPrepareOptions {
  InputFormat file_format = InputFormat::auto_detect;  // text files are `text` records
  SftFormat format = SftFormat::auto_detect;           // of each JSON record
  SftRenderOptions render;
  int64_t max_length = 0;  // tokens per sample; 0: no limit
  Overlong overlong = Overlong::truncate;
  bool skip_bad = false;
};

struct SftPrepareStats {
  int64_t files = 0, records = 0;     // records read (good ones)
  int64_t samples = 0, tokens = 0;    // written
  int64_t trained_tokens = 0;         // tokens with mask 1 (never counting a sample's first)
  int64_t truncated = 0, dropped_overlong = 0, dropped_untrained = 0;
  int64_t skipped = 0;                // malformed records (skip_bad)
  std::vector<std::string> skipped_examples;  // the first few, "FILE:LINE: what"
  int64_t by_format[6] = {};          // records per SftFormat
  TokenDType dtype = TokenDType::uint16;
};

// Writes out_prefix.{bin,idx} and out_prefix.mask.{bin,idx}; on any error nothing new is left.
SftPrepareStats prepare_sft_dataset(const std::vector<std::string>& inputs, const tok::Tokenizer& tokenizer,
                                    const std::optional<chat::ChatTemplate>& chat_template,
                                    const std::string& out_prefix, const SftPrepareOptions& options);

}  // namespace forma::data

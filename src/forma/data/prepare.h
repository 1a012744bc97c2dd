// Dataset preparation: tokenizes text, JSON lines or JSON array files into one Megatron-layout
// indexed dataset (PREFIX.bin/.idx), one document per record with EOS appended after each, the way
// Megatron's tools/preprocess_data.py does with --append-eod.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "forma/data/document_reader.h"
#include "forma/data/indexed_dataset.h"
#include "forma/tokenizer/tokenizer.h"

namespace forma::data {

struct PrepareOptions {
  InputFormat format = InputFormat::auto_detect;  // per file when auto (see resolve_format)
  std::string field = "text";       // JSON field with the document text
  bool split_paragraphs = false;    // text files: a document per blank-line-separated paragraph
  bool skip_bad = false;            // skip and count malformed records instead of failing
  bool add_special_tokens = false;  // tokenizer post-processing per document (e.g. Llama's BOS)
  bool append_eos = true;           // EOS after each document (documents stay apart when packed)
  int threads = 0;                  // encoding threads; 0 = one per core. Needs a tokenizer whose
                                    // encode() may run concurrently (forma's tokenizers are const)
};

struct PrepareStats {
  int64_t files = 0, input_bytes = 0;
  int64_t documents = 0, tokens = 0;  // tokens include the appended EOS ids
  int64_t skipped = 0;                // malformed records skipped (skip_bad)
  std::vector<std::string> skipped_examples;  // the first few skip messages, "FILE:LINE: what"
  TokenDType dtype = TokenDType::uint16;
};

// Writes out_prefix.bin and out_prefix.idx atomically: on any error nothing is left at out_prefix.
// Refuses, before writing anything, an out_prefix whose .bin or .idx is one of the inputs.
// Errors name the input file and line. Shows a progress bar over the input bytes.
PrepareStats prepare_dataset(const std::vector<std::string>& inputs, const tok::Tokenizer& tokenizer,
                             const std::string& out_prefix, const PrepareOptions& options = {});

}  // namespace forma::data

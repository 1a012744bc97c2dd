// Reads the documents of one input file for dataset preparation:
//   text   the whole file is one document, or (split_paragraphs) every run of lines between blank
//          lines is one;
//   jsonl  one JSON value per line: an object whose `field` is a string, or a bare string; blank
//          lines are ignored;
//   json   one JSON array whose elements are such objects or strings.
// A malformed record (invalid UTF-8, a line or element that is not JSON, a missing or non-string
// field) is a forma::Error "FILE:LINE: what", or with skip_bad it is passed to on_skipped and
// reading goes on. Damage that hides where records start and end (an unterminated JSON array) is
// always an error.
#pragma once
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace forma::data {

enum class InputFormat { auto_detect, text, jsonl, json };

// "auto", "text", "jsonl", "json"; anything else is a forma::Error naming the value.
InputFormat parse_input_format(const std::string& name);

// auto: *.jsonl / *.ndjson are JSON lines; *.json is a JSON array when its first non-blank byte is
// '[' and JSON lines otherwise; everything else is text.
InputFormat resolve_format(InputFormat format, const std::string& path, std::string_view contents);

struct ReaderOptions {
  InputFormat format = InputFormat::auto_detect;
  std::string field = "text";     // JSON field holding the document text
  bool split_paragraphs = false;  // text: one document per blank-line-separated paragraph
  bool skip_bad = false;          // skip malformed records instead of failing
};

struct DocumentSink {
  // text: the document (valid UTF-8, never empty); line: where it starts in the file.
  std::function<void(std::string_view text, int64_t line)> on_document;
  // When set, every JSON record is handed over whole (any value, any fields) instead of its
  // `field`: it returns "" for a good record, else what is wrong with it, which is reported as a
  // malformed record ("FILE:LINE: what", or skipped with skip_bad). Text files still go to
  // on_document. Used by SFT preparation (sft_prepare.h), whose records have several fields.
  std::function<std::string(const nlohmann::json& record, int64_t line)> on_json;
  // message "FILE:LINE: what" of a skipped record (only with skip_bad).
  std::function<void(const std::string& message)> on_skipped;
  // bytes of this file consumed so far (called after each record).
  std::function<void(size_t bytes)> on_progress;
};

// Reads `path` (memory-mapped) and calls the sink for each record in file order.
void read_documents(const std::string& path, const ReaderOptions& options, const DocumentSink& sink);

}  // namespace forma::data

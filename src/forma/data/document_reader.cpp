#include "forma/data/document_reader.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>

#include "forma/core/error.h"
#include "forma/core/files.h"
#include "forma/data/utf8.h"

namespace forma::data {

namespace {

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

bool blank_line(std::string_view line) {
  for (char c : line)
    if (!is_blank(c)) return false;
  return true;
}

std::string_view strip_bom(std::string_view text) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  return text;
}

// nlohmann's messages start with "[json.exception.parse_error.101] "; the tag helps nobody here.
std::string json_message(const std::exception& e) {
  std::string message = e.what();
  size_t tag_end = message.find("] ");
  return tag_end == std::string::npos ? message : message.substr(tag_end + 2);
}

class Reader {
 public:
  Reader(const std::string& path, const ReaderOptions& options, const DocumentSink& sink)
      : path_(path), options_(options), sink_(sink), file_(path), text_(strip_bom(file_.view())) {}

  void run() {
    switch (resolve_format(options_.format, path_, text_)) {
      case InputFormat::text: options_.split_paragraphs ? read_paragraphs() : read_whole(); break;
      case InputFormat::jsonl: read_jsonl(); break;
      default: read_json_array(); break;
    }
    progress(text_.size());
  }

 private:
  void progress(size_t offset) {
    if (sink_.on_progress) sink_.on_progress(offset + (file_.size() - text_.size()));
  }

  // 1-based line of byte `offset`. Records are visited in file order, so a cursor that moves
  // forward keeps this linear in the file size (counting from the start each time was quadratic).
  int64_t line_at(size_t offset) {
    offset = std::min(offset, text_.size());
    if (offset < cursor_offset_) cursor_offset_ = 0, cursor_line_ = 1;
    cursor_line_ += std::count(text_.begin() + static_cast<std::ptrdiff_t>(cursor_offset_),
                               text_.begin() + static_cast<std::ptrdiff_t>(offset), '\n');
    cursor_offset_ = offset;
    return cursor_line_;
  }

  // A malformed record: an error, or with skip_bad a counted skip.
  void bad(int64_t line, const std::string& what) {
    std::string message = fmt::format("{}:{}: {}", path_, line, what);
    if (!options_.skip_bad) throw Error(message);
    if (sink_.on_skipped) sink_.on_skipped(message);
  }

  // Emits a text document that starts at byte `begin` of the file (skipped if it is bad).
  void emit_text(std::string_view doc, size_t begin) {
    size_t bad_byte = find_invalid_utf8(doc);
    if (bad_byte != std::string_view::npos) {
      bad(line_at(begin + bad_byte),
          fmt::format("invalid UTF-8 (byte 0x{:02X})", static_cast<unsigned char>(doc[bad_byte])));
      return;
    }
    if (!doc.empty()) sink_.on_document(doc, line_at(begin));
  }

  void read_whole() { emit_text(text_, 0); }

  void read_paragraphs() {
    size_t pos = 0, para_begin = std::string_view::npos, para_end = 0;
    while (pos < text_.size()) {
      size_t eol = text_.find('\n', pos);
      size_t next = eol == std::string_view::npos ? text_.size() : eol + 1;
      std::string_view content = text_.substr(pos, (eol == std::string_view::npos ? text_.size() : eol) - pos);
      if (blank_line(content)) {
        if (para_begin != std::string_view::npos) flush_paragraph(para_begin, para_end);
        para_begin = std::string_view::npos;
      } else {
        if (para_begin == std::string_view::npos) para_begin = pos;
        para_end = pos + content.size();
        if (!content.empty() && content.back() == '\r') --para_end;  // CRLF files
      }
      pos = next;
    }
    if (para_begin != std::string_view::npos) flush_paragraph(para_begin, para_end);
  }

  void flush_paragraph(size_t begin, size_t end) {
    emit_text(text_.substr(begin, end - begin), begin);
    progress(end);
  }

  void read_jsonl() {
    size_t pos = 0;
    int64_t line = 1;
    while (pos < text_.size()) {
      size_t eol = text_.find('\n', pos);
      size_t end = eol == std::string_view::npos ? text_.size() : eol;
      std::string_view record = text_.substr(pos, end - pos);
      if (!blank_line(record)) emit_json(record, line, "line");
      pos = end + 1;
      ++line;
      progress(std::min(pos, text_.size()));
    }
  }

  // Finds the elements of the top-level array by tracking strings and nesting (so one bad element
  // can be reported by line and skipped), then parses each element on its own.
  void read_json_array() {
    size_t pos = skip_blanks(0);
    check(pos < text_.size() && text_[pos] == '[', "{}:{}: a JSON array file must start with '['",
          path_, line_at(pos));
    ++pos;
    int64_t index = 0;
    for (;;) {
      const size_t separator = pos - 1;  // the '[' or ',' before this element
      pos = skip_blanks(pos);
      check(pos < text_.size(), "{}:{}: unterminated JSON array", path_, line_at(pos));
      if (index == 0 && text_[pos] == ']') {
        ++pos;
        break;
      }
      size_t begin = pos;
      pos = element_end(pos);
      std::string_view element = text_.substr(begin, pos - begin);
      while (!element.empty() && is_blank(element.back())) element.remove_suffix(1);
      if (element.empty()) {
        bad(line_at(separator),
            fmt::format("element {} of the JSON array is empty (stray comma?)", index));
      } else {
        emit_json(element, line_at(begin), fmt::format("element {}", index));
      }
      ++index;
      progress(pos);
      if (text_[pos++] == ']') break;
    }
    pos = skip_blanks(pos);
    check(pos == text_.size(), "{}:{}: unexpected text after the JSON array", path_,
          line_at(pos));
  }

  size_t skip_blanks(size_t pos) const {
    while (pos < text_.size() && is_blank(text_[pos])) ++pos;
    return pos;
  }

  // Offset of the ',' or ']' that ends the element starting at `pos`.
  size_t element_end(size_t pos) {
    const size_t start = pos;
    int depth = 0;
    bool in_string = false;
    for (; pos < text_.size(); ++pos) {
      char c = text_[pos];
      if (in_string) {
        if (c == '\\') ++pos;
        else if (c == '"') in_string = false;
      } else if (c == '"') {
        in_string = true;
      } else if (c == '[' || c == '{') {
        ++depth;
      } else if (c == ']' || c == '}') {
        if (depth == 0) {
          if (c == ']') return pos;
          break;
        }
        --depth;
      } else if (c == ',' && depth == 0) {
        return pos;
      }
    }
    fail("{}:{}: unterminated JSON array (brackets or quotes of the element starting here do not "
         "close)", path_, line_at(start));
  }

  void emit_json(std::string_view record, int64_t line, const std::string& where) {
    size_t bad_byte = find_invalid_utf8(record);
    if (bad_byte != std::string_view::npos) {
      bad(line + line_of_offset(record, bad_byte) - 1,
          fmt::format("invalid UTF-8 (byte 0x{:02X})", static_cast<unsigned char>(record[bad_byte])));
      return;
    }
    nlohmann::json value;
    try {
      value = nlohmann::json::parse(record.begin(), record.end());
    } catch (const nlohmann::json::exception& e) {
      bad(line, fmt::format("{} is not valid JSON: {}", where, json_message(e)));
      return;
    }
    if (sink_.on_json) {
      std::string problem = sink_.on_json(value, line);
      // A JSON line is named by its line alone; an array element also by its index.
      if (!problem.empty()) bad(line, where == "line" ? problem : fmt::format("{}: {}", where, problem));
      return;
    }
    const nlohmann::json* text = &value;
    if (value.is_object()) {
      auto it = value.find(options_.field);
      if (it == value.end()) {
        bad(line, fmt::format("{} has no field \"{}\"", where, options_.field));
        return;
      }
      text = &*it;
    }
    if (!text->is_string()) {
      bad(line, value.is_object()
                    ? fmt::format("field \"{}\" of {} is a {}, not a string", options_.field, where,
                                  text->type_name())
                    : fmt::format("{} is a {}, not an object or a string", where, value.type_name()));
      return;
    }
    const auto& doc = text->get_ref<const std::string&>();
    if (!doc.empty()) sink_.on_document(doc, line);
  }

  std::string path_;
  ReaderOptions options_;
  const DocumentSink& sink_;
  MappedFile file_;
  std::string_view text_;
  size_t cursor_offset_ = 0;
  int64_t cursor_line_ = 1;
};

}  // namespace

InputFormat parse_input_format(const std::string& name) {
  if (name == "auto") return InputFormat::auto_detect;
  if (name == "text") return InputFormat::text;
  if (name == "jsonl") return InputFormat::jsonl;
  if (name == "json") return InputFormat::json;
  fail("unknown input format \"{}\" (expected auto, text, jsonl or json)", name);
}

InputFormat resolve_format(InputFormat format, const std::string& path, std::string_view contents) {
  if (format != InputFormat::auto_detect) return format;
  std::string ext = std::filesystem::path(path).extension().string();
  if (ext == ".jsonl" || ext == ".ndjson") return InputFormat::jsonl;
  if (ext != ".json") return InputFormat::text;
  for (char c : contents)
    if (!is_blank(c)) return c == '[' ? InputFormat::json : InputFormat::jsonl;
  return InputFormat::jsonl;
}

void read_documents(const std::string& path, const ReaderOptions& options, const DocumentSink& sink) {
  check(static_cast<bool>(sink.on_document), "read_documents: no document callback");
  Reader(path, options, sink).run();
}

}  // namespace forma::data

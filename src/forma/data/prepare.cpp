#include "forma/data/prepare.h"

#include <filesystem>

#include "forma/core/error.h"
#include "forma/core/log.h"
#include "forma/core/progress.h"

namespace forma::data {

namespace {

constexpr size_t kSkipExamples = 5;

int64_t total_input_bytes(const std::vector<std::string>& inputs) {
  int64_t total = 0;
  for (const auto& path : inputs) {
    std::error_code ec;
    auto size = std::filesystem::file_size(path, ec);
    check(!ec, "cannot read input {}: {}", path, ec.message());
    total += static_cast<int64_t>(size);
  }
  return total;
}

}  // namespace

PrepareStats prepare_dataset(const std::vector<std::string>& inputs, const tok::Tokenizer& tokenizer,
                             const std::string& out_prefix, const PrepareOptions& options) {
  check(!inputs.empty(), "prepare: no input files");
  std::optional<int32_t> eos = tokenizer.eos_id();
  check(!options.append_eos || eos.has_value(),
        "prepare: the tokenizer has no EOS token to append after each document");
  auto out_dir = std::filesystem::path(out_prefix).parent_path();
  check(out_dir.empty() || std::filesystem::is_directory(out_dir),
        "prepare: output folder {} does not exist", out_dir.string());

  PrepareStats stats;
  stats.dtype = dtype_for_vocab(tokenizer.vocab_size());
  stats.input_bytes = total_input_bytes(inputs);
  IndexedDatasetWriter writer(out_prefix, stats.dtype);
  Progress progress("prepare " + out_prefix, stats.input_bytes, "bytes");
  ReaderOptions reader{options.format, options.field, options.split_paragraphs, options.skip_bad};

  int64_t bytes_before = 0;  // input bytes of the files already read
  std::vector<int32_t> ids;
  DocumentSink sink;
  sink.on_document = [&](std::string_view text, int64_t) {
    ids = tokenizer.encode(text, options.add_special_tokens);
    if (options.append_eos) ids.push_back(*eos);
    writer.add_document(ids);
  };
  sink.on_skipped = [&](const std::string& message) {
    if (stats.skipped_examples.size() < kSkipExamples) stats.skipped_examples.push_back(message);
    ++stats.skipped;
  };
  sink.on_progress = [&](size_t bytes) {
    progress.update(bytes_before + static_cast<int64_t>(bytes),
                    fmt::format("{} docs {} tokens", writer.documents(), writer.tokens()));
  };
  for (const auto& path : inputs) {
    read_documents(path, reader, sink);
    bytes_before += static_cast<int64_t>(std::filesystem::file_size(path));
    ++stats.files;
  }
  check(writer.documents() > 0, "prepare: the inputs hold no documents ({} skipped as malformed)",
        stats.skipped);
  writer.finish();
  progress.finish(fmt::format("{} docs {} tokens", writer.documents(), writer.tokens()));

  stats.documents = writer.documents();
  stats.tokens = writer.tokens();
  if (stats.skipped > 0) {
    log::warn("prepare: skipped {} malformed records, e.g.", stats.skipped);
    for (const auto& message : stats.skipped_examples) log::warn("  {}", message);
  }
  return stats;
}

}  // namespace forma::data

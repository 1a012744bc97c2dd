#include "forma/data/prepare.h"

#include <exception>
#include <filesystem>
#include <thread>

#include "forma/core/error.h"
#include "forma/core/files.h"
#include "forma/core/log.h"
#include "forma/core/progress.h"

namespace forma::data {

namespace {

constexpr size_t kSkipExamples = 5;
constexpr size_t kBatchBytes = 1 << 20;

// Collects documents into batches of about 1 MiB, encodes a batch on several threads and writes
// its documents in input order, so the output does not depend on the thread count.
class BatchEncoder {
 public:
  BatchEncoder(const tok::Tokenizer& tokenizer, const PrepareOptions& options, IndexedDatasetWriter& writer)
      : tokenizer_(tokenizer), options_(options), writer_(writer), eos_(tokenizer.eos_id()) {
    unsigned cores = std::thread::hardware_concurrency();
    threads_ = options.threads > 0 ? options.threads : static_cast<int>(cores > 0 ? cores : 1);
  }

  void add(std::string_view text) {
    texts_.emplace_back(text);
    bytes_ += text.size();
    if (bytes_ >= kBatchBytes) flush();
  }

  void flush() {
    std::vector<std::vector<int32_t>> ids(texts_.size());
    const auto workers = static_cast<size_t>(std::min<size_t>(static_cast<size_t>(threads_), texts_.size()));
    std::vector<std::exception_ptr> errors(workers);
    auto encode_share = [&](size_t worker) {
      try {
        for (size_t i = worker; i < texts_.size(); i += workers) {
          ids[i] = tokenizer_.encode(texts_[i], options_.add_special_tokens);
          if (options_.append_eos) ids[i].push_back(*eos_);
        }
      } catch (...) {
        errors[worker] = std::current_exception();
      }
    };
    std::vector<std::thread> pool;
    for (size_t w = 1; w < workers; ++w) pool.emplace_back(encode_share, w);
    if (workers > 0) encode_share(0);
    for (auto& thread : pool) thread.join();
    for (auto& error : errors)
      if (error) std::rethrow_exception(error);
    for (const auto& doc : ids) writer_.add_document(doc);
    texts_.clear();
    bytes_ = 0;
  }

 private:
  const tok::Tokenizer& tokenizer_;
  const PrepareOptions& options_;
  IndexedDatasetWriter& writer_;
  std::optional<int32_t> eos_;
  int threads_ = 1;
  std::vector<std::string> texts_;
  size_t bytes_ = 0;
};

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
  // PREFIX.bin is replaced at the end: an input of that name would be lost (checked before writing).
  for (const auto& out : {bin_path(out_prefix), idx_path(out_prefix)}) check_output_is_not_input(out, inputs, "--out");
  auto out_dir = std::filesystem::path(out_prefix).parent_path();
  if (!out_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(out_dir, ec);
    check(std::filesystem::is_directory(out_dir), "prepare: cannot create the output folder {}{}", out_dir.string(),
          ec ? ": " + ec.message() : "");
  }

  PrepareStats stats;
  stats.dtype = dtype_for_vocab(tokenizer.vocab_size());
  stats.input_bytes = total_input_bytes(inputs);
  IndexedDatasetWriter writer(out_prefix, stats.dtype);
  Progress progress("prepare " + out_prefix, stats.input_bytes, "bytes");
  ReaderOptions reader{options.format, options.field, options.split_paragraphs, options.skip_bad};

  int64_t bytes_before = 0;  // input bytes of the files already read
  BatchEncoder encoder(tokenizer, options, writer);
  DocumentSink sink;
  sink.on_document = [&](std::string_view text, int64_t) { encoder.add(text); };
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
  encoder.flush();
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

#include "forma/data/sft_prepare.h"

#include <filesystem>

#include "forma/core/error.h"
#include "forma/core/files.h"
#include "forma/core/log.h"
#include "forma/core/progress.h"
#include "forma/data/sft_dataset.h"

namespace forma::data {

namespace {

constexpr size_t kSftSkipExamples = 5;

int64_t trained_targets(const SftTokens& sample) {
  int64_t count = 0;
  for (size_t i = 1; i < sample.mask.size(); ++i) count += sample.mask[i];
  return count;
}

}  // namespace

SftPrepareStats prepare_sft_dataset(const std::vector<std::string>& inputs, const tok::Tokenizer& tokenizer,
                                    const std::optional<chat::ChatTemplate>& chat_template,
                                    const std::string& out_prefix, const SftPrepareOptions& options) {
  check(!inputs.empty(), "prepare: no input files");
  check(options.max_length >= 0, "prepare: --max-length must be >= 0");
  for (const auto& prefix : {out_prefix, mask_prefix(out_prefix)}) {
    for (const auto& out : {bin_path(prefix), idx_path(prefix)}) check_output_is_not_input(out, inputs, "--out");
  }
  auto out_dir = std::filesystem::path(out_prefix).parent_path();
  if (!out_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(out_dir, ec);
    check(std::filesystem::is_directory(out_dir), "prepare: cannot create the output folder {}", out_dir.string());
  }
  SftPrepareStats stats;
  stats.dtype = dtype_for_vocab(tokenizer.vocab_size());
  SftDatasetWriter writer(out_prefix, stats.dtype);
  SftRenderer renderer(tokenizer, chat_template, options.render);
  int64_t total_bytes = 0;
  for (const auto& path : inputs) total_bytes += static_cast<int64_t>(std::filesystem::file_size(path));
  Progress progress("prepare " + out_prefix, total_bytes, "bytes");

  auto add = [&](const SftRecord& record) {
    SftTokens sample = renderer.render(record);  // RecordError: the reader reports it with FILE:LINE
    ++stats.records;
    ++stats.by_format[static_cast<int>(record.format)];
    if (options.max_length > 0 && static_cast<int64_t>(sample.ids.size()) > options.max_length) {
      if (options.overlong == Overlong::drop) {
        ++stats.dropped_overlong;
        return;
      }
      sample.ids.resize(static_cast<size_t>(options.max_length));
      sample.mask.resize(static_cast<size_t>(options.max_length));
      ++stats.truncated;
    }
    const int64_t targets = trained_targets(sample);
    if (targets == 0) {
      ++stats.dropped_untrained;
      return;
    }
    stats.trained_tokens += targets;
    writer.add(sample);
  };
  std::string current;  // the file being read
  ReaderOptions reader{options.file_format, "text", false, options.skip_bad};
  DocumentSink sink;
  sink.on_json = [&](const nlohmann::json& value, int64_t) -> std::string {
    try {
      add(parse_sft_record(value, options.format));
    } catch (const RecordError& e) {
      return e.what();
    }
    return "";
  };
  sink.on_document = [&](std::string_view text, int64_t line) {  // a text file: one text record
    SftRecord record;
    record.completion = std::string(text);
    try {
      add(record);
    } catch (const RecordError& e) {
      fail("{}:{}: {}", current, line, e.what());
    }
  };
  sink.on_skipped = [&](const std::string& message) {
    if (stats.skipped_examples.size() < kSftSkipExamples) stats.skipped_examples.push_back(message);
    ++stats.skipped;
  };
  int64_t bytes_before = 0;
  sink.on_progress = [&](size_t bytes) {
    progress.update(bytes_before + static_cast<int64_t>(bytes), fmt::format("{} samples", writer.samples()));
  };
  for (const auto& path : inputs) {
    current = path;
    read_documents(path, reader, sink);
    bytes_before += static_cast<int64_t>(std::filesystem::file_size(path));
    ++stats.files;
  }
  check(writer.samples() > 0,
        "prepare: no SFT samples to write ({} records read, {} malformed skipped, {} dropped as too long, {} with "
        "no trained token)", stats.records, stats.skipped, stats.dropped_overlong, stats.dropped_untrained);
  writer.finish();
  progress.finish(fmt::format("{} samples {} tokens", writer.samples(), writer.tokens()));
  stats.samples = writer.samples();
  stats.tokens = writer.tokens();
  if (stats.skipped > 0) {
    log::warn("prepare: skipped {} malformed records, e.g.", stats.skipped);
    for (const auto& message : stats.skipped_examples) log::warn("  {}", message);
  }
  return stats;
}

}  // namespace forma::data

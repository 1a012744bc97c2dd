// `forma data prepare|info`: tokenize corpora into Megatron-layout indexed datasets (PREFIX.bin/.idx)
// and describe an existing one.
#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "forma/cli/command.h"
#include "forma/core/error.h"
#include "forma/core/files.h"
#include "forma/core/log.h"
#include "forma/data/indexed_dataset.h"
#include "forma/data/prepare.h"
#include "forma/tokenizer/tokenizer.h"

// A named namespace (not an anonymous one): unity builds compile the commands in one unit.
namespace forma::cli::data_command {

struct PrepareArgs {
  std::vector<std::string> inputs;
  std::string tokenizer, out, format = "auto", field = "text";
  bool skip_bad = false, split_paragraphs = false, add_special = false, no_eos = false;
  int threads = 0;
};

struct InfoArgs {
  std::string prefix, tokenizer;
  int seq_len = 0;
};

void run_prepare(const PrepareArgs& a) {
  forma::data::PrepareOptions options;
  options.format = forma::data::parse_input_format(a.format);
  options.field = a.field;
  options.skip_bad = a.skip_bad;
  options.split_paragraphs = a.split_paragraphs;
  options.add_special_tokens = a.add_special;
  options.append_eos = !a.no_eos;
  options.threads = a.threads;
  // The tokenizer is read too (prepare_dataset checks the inputs).
  for (const auto& out : {forma::data::bin_path(a.out), forma::data::idx_path(a.out)}) {
    forma::check_output_is_not_input(out, {a.tokenizer}, "--out");
  }
  auto tokenizer = forma::tok::load_tokenizer(a.tokenizer);
  auto stats = forma::data::prepare_dataset(a.inputs, *tokenizer, a.out, options);
  std::printf("wrote %s.bin and %s.idx: %lld documents, %lld tokens (%s), from %lld files (%lld bytes)",
              a.out.c_str(), a.out.c_str(), static_cast<long long>(stats.documents),
              static_cast<long long>(stats.tokens), forma::data::dtype_name(stats.dtype),
              static_cast<long long>(stats.files), static_cast<long long>(stats.input_bytes));
  if (stats.skipped > 0) std::printf(", %lld malformed records skipped", static_cast<long long>(stats.skipped));
  std::printf("\n");
}

// Lengths are per document (summed over its sequences), as a reader of the corpus thinks of them.
std::vector<int64_t> document_lengths(const forma::data::IndexedDataset& dataset) {
  std::vector<int64_t> lengths;
  for (int64_t d = 0; d < dataset.document_count(); ++d) {
    int64_t tokens = 0;
    for (int64_t s = dataset.document_begin(d); s < dataset.document_begin(d + 1); ++s)
      tokens += dataset.sequence_length(s);
    lengths.push_back(tokens);
  }
  return lengths;
}

// Counts the ids at or beyond vocab_size (or negative) in the whole dataset, printing the first few
// with their document and position: the ids training would stop at.
int64_t report_ids_outside(const forma::data::IndexedDataset& dataset, int32_t vocab_size) {
  int64_t outside = 0;
  for (int64_t d = 0; d < dataset.document_count(); ++d) {
    int64_t position = 0;
    for (int64_t s = dataset.document_begin(d); s < dataset.document_begin(d + 1); ++s) {
      for (int32_t id : dataset.sequence(s)) {
        if (id < 0 || id >= vocab_size) {
          if (++outside <= 10) {
            std::printf("outside vocabulary: document %lld, token %lld: id %d\n", static_cast<long long>(d),
                        static_cast<long long>(position), id);
          }
        }
        ++position;
      }
    }
  }
  std::printf("ids outside the vocabulary (%d ids): %lld\n", vocab_size, static_cast<long long>(outside));
  return outside;
}

void run_info(const InfoArgs& a) {
  forma::data::IndexedDataset dataset(a.prefix);
  std::printf("dataset    %s\n", a.prefix.c_str());
  std::printf("dtype      %s\n", forma::data::dtype_name(dataset.dtype()));
  std::printf("documents  %lld\n", static_cast<long long>(dataset.document_count()));
  std::printf("sequences  %lld\n", static_cast<long long>(dataset.sequence_count()));
  std::printf("tokens     %lld\n", static_cast<long long>(dataset.total_tokens()));
  std::printf("bytes      %lld (.bin)\n",
              static_cast<long long>(std::filesystem::file_size(forma::data::bin_path(a.prefix))));
  auto lengths = document_lengths(dataset);
  if (!lengths.empty()) {
    std::sort(lengths.begin(), lengths.end());
    double mean = static_cast<double>(dataset.total_tokens()) / static_cast<double>(lengths.size());
    std::printf("doc tokens min %lld, median %lld, mean %.1f, p99 %lld, max %lld\n",
                static_cast<long long>(lengths.front()), static_cast<long long>(lengths[lengths.size() / 2]),
                mean, static_cast<long long>(lengths[lengths.size() * 99 / 100]),
                static_cast<long long>(lengths.back()));
  }
  if (a.seq_len > 0) {
    int64_t tokens = dataset.total_tokens();
    std::printf("samples    %lld of %d + 1 tokens\n",
                static_cast<long long>(tokens > a.seq_len ? (tokens - 1) / a.seq_len : 0), a.seq_len);
  }
  if (!a.tokenizer.empty()) {
    auto tokenizer = forma::tok::load_tokenizer(a.tokenizer);
    const int64_t outside = report_ids_outside(dataset, tokenizer->vocab_size());
    if (dataset.sequence_count() > 0) {
      std::vector<int32_t> ids = dataset.sequence(0);
      ids.resize(std::min<size_t>(ids.size(), 64));
      std::erase_if(ids, [&](int32_t id) { return id < 0 || id >= tokenizer->vocab_size(); });
      std::printf("document 0 begins: %s\n", tokenizer->decode(ids).c_str());
    }
    forma::check(outside == 0, "{}: {} token ids are outside the tokenizer's vocabulary ({} ids): was it "
                 "prepared with another tokenizer?", a.prefix, outside, tokenizer->vocab_size());
  }
}

forma::cli::CommandRegistration reg(40, [](CLI::App& app) {
  auto* data = app.add_subcommand("data", "prepare and inspect tokenized datasets (Megatron .bin/.idx)");
  data->require_subcommand(1);

  auto prepare_args = std::make_shared<PrepareArgs>();
  auto* prepare = data->add_subcommand("prepare", "tokenize text / JSON lines / JSON arrays into PREFIX.bin/.idx");
  prepare->add_option("--input,-i", prepare_args->inputs, "input files")->required()->check(CLI::ExistingFile);
  prepare->add_option("--tokenizer,-t", prepare_args->tokenizer, "tokenizer folder or file")->required();
  prepare->add_option("--out,-o", prepare_args->out, "output prefix (writes PREFIX.bin and PREFIX.idx)")->required();
  prepare->add_option("--format", prepare_args->format, "auto, text, jsonl or json")
      ->check(CLI::IsMember({"auto", "text", "jsonl", "json"}))->capture_default_str();
  prepare->add_option("--field", prepare_args->field, "JSON field holding the text")->capture_default_str();
  prepare->add_flag("--skip-bad", prepare_args->skip_bad, "skip and count malformed records instead of failing");
  prepare->add_flag("--split-paragraphs", prepare_args->split_paragraphs,
                    "text files: one document per blank-line-separated paragraph");
  prepare->add_flag("--add-special-tokens", prepare_args->add_special,
                    "apply the tokenizer's post-processor to each document (e.g. BOS)");
  prepare->add_flag("--no-eos", prepare_args->no_eos, "do not append EOS after each document");
  prepare->add_option("--threads", prepare_args->threads, "encoding threads (0: one per core)")
      ->check(CLI::NonNegativeNumber);
  prepare->callback([prepare_args] { run_prepare(*prepare_args); });

  auto info_args = std::make_shared<InfoArgs>();
  auto* info = data->add_subcommand("info", "describe a prepared dataset");
  info->add_option("prefix", info_args->prefix, "dataset prefix (PREFIX.bin/.idx)")->required();
  info->add_option("--tokenizer,-t", info_args->tokenizer, "decode the start of the first document");
  info->add_option("--seq-len", info_args->seq_len, "also count packed samples of this length");
  info->callback([info_args] { run_info(*info_args); });
});

}  // namespace forma::cli::data_command

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
#include "forma/data/sft_dataset.h"
#include "forma/data/sft_prepare.h"
#include "forma/tokenizer/tokenizer.h"

// A named namespace (not an anonymous one): unity builds compile the commands in one unit.
namespace forma::cli::data_command {

struct PrepareArgs {
  std::vector<std::string> inputs;
  std::string tokenizer, out, format = "auto", field = "text";
  bool skip_bad = false, split_paragraphs = false, add_special = false, no_eos = false;
  int threads = 0;
  // --sft (docs/finetuning.md)
  bool sft = false, train_on_all = false;
  std::string sft_format = "auto", chat_template, overlong = "truncate";
  int64_t max_length = 0;
};

struct InfoArgs {
  std::string prefix, tokenizer;
  int seq_len = 0;
};

// The tokenizer folder's chat template (tokenizer_config.json), or --chat-template FILE (a Jinja
// file, with the folder's special tokens). None when neither has one: only conversations need it.
std::optional<forma::chat::ChatTemplate> sft_chat_template(const PrepareArgs& a) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::is_directory(a.tokenizer) ? fs::path(a.tokenizer) : fs::path(a.tokenizer).parent_path();
  const std::string config = (dir / "tokenizer_config.json").string();
  const bool has_config = fs::exists(config);
  if (!a.chat_template.empty()) {
    auto special = has_config ? forma::chat::load_special_tokens(config) : nlohmann::ordered_json::object();
    try {
      return forma::chat::ChatTemplate(forma::read_file(a.chat_template), special);
    } catch (const forma::Error& e) {
      forma::fail("--chat-template {}: {}", a.chat_template, e.what());
    }
  }
  if (!has_config) return std::nullopt;
  try {
    return forma::chat::load_chat_template(config);
  } catch (const forma::Error& e) {
    forma::log::info("no chat template ({}): conversations will be refused", e.what());
    return std::nullopt;
  }
}

void run_prepare_sft(const PrepareArgs& a) {
  forma::data::SftPrepareOptions options;
  options.file_format = forma::data::parse_input_format(a.format);
  options.format = forma::data::parse_sft_format(a.sft_format);
  options.render.train_on_all = a.train_on_all;
  options.render.add_special_tokens = a.add_special;
  options.render.append_eos = !a.no_eos;
  options.max_length = a.max_length;
  options.overlong = a.overlong == "drop" ? forma::data::Overlong::drop : forma::data::Overlong::truncate;
  options.skip_bad = a.skip_bad;
  auto tokenizer = forma::tok::load_tokenizer(a.tokenizer);
  auto stats = forma::data::prepare_sft_dataset(a.inputs, *tokenizer, sft_chat_template(a), a.out, options);
  std::printf("wrote %s.{bin,idx} and %s.mask.{bin,idx}: %lld samples, %lld tokens (%s), %lld trained on (%.1f%%), "
              "from %lld records in %lld files\n",
              a.out.c_str(), a.out.c_str(), static_cast<long long>(stats.samples), static_cast<long long>(stats.tokens),
              forma::data::dtype_name(stats.dtype), static_cast<long long>(stats.trained_tokens),
              100.0 * static_cast<double>(stats.trained_tokens) / static_cast<double>(stats.tokens),
              static_cast<long long>(stats.records), static_cast<long long>(stats.files));
  std::printf("records by format:");
  for (int f = 1; f < 6; ++f) {
    if (stats.by_format[f] > 0) {
      std::printf(" %s %lld", forma::data::sft_format_name(static_cast<forma::data::SftFormat>(f)),
                  static_cast<long long>(stats.by_format[f]));
    }
  }
  std::printf("\ntruncated %lld, dropped as too long %lld, dropped with no trained token %lld, malformed skipped %lld\n",
              static_cast<long long>(stats.truncated), static_cast<long long>(stats.dropped_overlong),
              static_cast<long long>(stats.dropped_untrained), static_cast<long long>(stats.skipped));
}

void run_prepare(const PrepareArgs& a) {
  for (const auto& out : {forma::data::bin_path(a.out), forma::data::idx_path(a.out)}) {
    forma::check_output_is_not_input(out, {a.tokenizer}, "--out");
  }
  if (a.sft) {
    forma::check(a.field == "text" && !a.split_paragraphs && a.threads == 0,
                 "--field, --split-paragraphs and --threads are for pretraining data, not --sft (SFT records name "
                 "their own fields; docs/finetuning.md)");
    return run_prepare_sft(a);
  }
  forma::check(a.sft_format == "auto" && a.chat_template.empty() && !a.train_on_all && a.max_length == 0,
               "--sft-format, --chat-template, --train-on-all and --max-length need --sft");
  forma::data::PrepareOptions options;
  options.format = forma::data::parse_input_format(a.format);
  options.field = a.field;
  options.skip_bad = a.skip_bad;
  options.split_paragraphs = a.split_paragraphs;
  options.add_special_tokens = a.add_special;
  options.append_eos = !a.no_eos;
  options.threads = a.threads;
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
  if (forma::data::is_sft_dataset(a.prefix)) {  // the loss mask beside the ids (--sft)
    forma::data::SftDataset sft(a.prefix);
    int64_t trained = 0;
    for (int64_t s = 0; s < sft.size(); ++s) {
      std::vector<int32_t> ids(static_cast<size_t>(sft.length(s))), mask(ids.size());
      sft.read(s, 0, sft.length(s), ids.data(), mask.data());
      for (size_t t = 1; t < mask.size(); ++t) trained += mask[t];
    }
    std::printf("SFT mask   %lld tokens trained on (%.1f%%), in %s.mask.{bin,idx}\n", static_cast<long long>(trained),
                100.0 * static_cast<double>(trained) / static_cast<double>(std::max<int64_t>(dataset.total_tokens(), 1)),
                a.prefix.c_str());
  }
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
  prepare->add_flag("--sft", prepare_args->sft,
                    "supervised fine-tuning data: ids and a loss mask (PREFIX.mask.bin/.idx), docs/finetuning.md");
  prepare->add_option("--sft-format", prepare_args->sft_format,
                      "--sft: auto, messages, sharegpt, alpaca, prompt_completion or text")
      ->check(CLI::IsMember({"auto", "messages", "sharegpt", "alpaca", "prompt_completion", "text"}))
      ->capture_default_str();
  prepare->add_option("--chat-template", prepare_args->chat_template,
                      "--sft: a Jinja chat template file (default: the tokenizer folder's tokenizer_config.json)")
      ->check(CLI::ExistingFile);
  prepare->add_flag("--train-on-all", prepare_args->train_on_all,
                    "--sft: train on every token, not only assistant turns and completions");
  prepare->add_option("--max-length", prepare_args->max_length, "--sft: tokens per sample at most (0: no limit)")
      ->check(CLI::NonNegativeNumber);
  prepare->add_option("--overlong", prepare_args->overlong, "--sft: what to do with longer samples: truncate or drop")
      ->check(CLI::IsMember({"truncate", "drop"}))->capture_default_str();
  prepare->callback([prepare_args] { run_prepare(*prepare_args); });

  auto info_args = std::make_shared<InfoArgs>();
  auto* info = data->add_subcommand("info", "describe a prepared dataset");
  info->add_option("prefix", info_args->prefix, "dataset prefix (PREFIX.bin/.idx)")->required();
  info->add_option("--tokenizer,-t", info_args->tokenizer, "decode the start of the first document");
  info->add_option("--seq-len", info_args->seq_len, "also count packed samples of this length");
  info->callback([info_args] { run_info(*info_args); });
});

}  // namespace forma::cli::data_command

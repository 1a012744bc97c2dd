// `forma tokenizer train|encode|decode`: byte-level BPE training, and encoding/decoding with any
// tokenizer load_tokenizer understands.
#include <cstdio>
#include <sstream>

#include <nlohmann/json.hpp>

#include "forma/cli/command.h"
#include "forma/core/error.h"
#include "forma/core/files.h"
#include "forma/core/log.h"
#include "forma/tokenizer/bpe_trainer.h"
#include "forma/tokenizer/tokenizer.h"

// A named namespace (not an anonymous one): unity builds compile the commands in one unit.
namespace forma::cli::tokenizer_command {

struct TrainArgs {
  std::vector<std::string> inputs;
  int32_t vocab_size = 4096;
  std::string out;
  std::vector<std::string> special_tokens = {"<|endoftext|>"};
  int64_t min_frequency = 2;
  int64_t model_max_length = 2048;
};

struct EncodeArgs {
  std::string tokenizer, text, file;
  bool text_given = false, add_special = false, json = false;
};

struct DecodeArgs {
  std::string tokenizer, ids;
  bool skip_special = false;
};

void run_train(const TrainArgs& a) {
  forma::tok::BpeTrainOptions options;
  options.vocab_size = a.vocab_size;
  options.special_tokens = a.special_tokens;
  options.min_frequency = a.min_frequency;
  // The files written must not be the corpus read (the corpus is read after training starts).
  for (const char* name : {"tokenizer.json", "tokenizer_config.json"}) {
    forma::check_output_is_not_input(a.out + "/" + name, a.inputs, "--out");
  }
  auto json = forma::tok::train_bpe_files(a.inputs, options);
  forma::tok::save_trained_tokenizer(json, a.out, a.model_max_length);
  forma::log::info("wrote {}/tokenizer.json ({} merges) and tokenizer_config.json", a.out,
                   json["model"]["merges"].size());
}

void run_encode(const EncodeArgs& a) {
  forma::check(a.text_given != !a.file.empty(), "give exactly one of --text and --file");
  auto tok = forma::tok::load_tokenizer(a.tokenizer);
  std::string text = a.text_given ? a.text : forma::read_file(a.file);
  auto ids = tok->encode(text, a.add_special);
  std::string out;
  if (a.json) {
    out = nlohmann::json(ids).dump();
  } else {
    for (size_t i = 0; i < ids.size(); ++i) out += (i ? " " : "") + std::to_string(ids[i]);
  }
  std::printf("%s\n", out.c_str());
}

std::vector<int32_t> parse_ids(const std::string& text) {
  std::vector<int32_t> ids;
  std::string item;
  std::stringstream stream(text);
  while (std::getline(stream, item, ',')) {
    size_t b = item.find_first_not_of(" \t\n["), e = item.find_last_not_of(" \t\n]");
    if (b == std::string::npos) continue;
    std::string number = item.substr(b, e - b + 1);
    size_t used = 0;
    long long value = 0;
    try {
      value = std::stoll(number, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    forma::check(used == number.size() && value >= 0 && value <= INT32_MAX, "--ids: '{}' is not a token id", number);
    ids.push_back(static_cast<int32_t>(value));
  }
  return ids;
}

void run_decode(const DecodeArgs& a) {
  auto tok = forma::tok::load_tokenizer(a.tokenizer);
  std::string text = tok->decode(parse_ids(a.ids), a.skip_special);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fputc('\n', stdout);
}

forma::cli::CommandRegistration reg(40, [](CLI::App& app) {
  auto* cmd = app.add_subcommand("tokenizer", "train byte-level BPE, encode and decode text");
  cmd->require_subcommand(1);

  auto train = std::make_shared<TrainArgs>();
  auto* t = cmd->add_subcommand("train", "train a byte-level BPE tokenizer (writes tokenizer.json)");
  t->add_option("--input", train->inputs, "text files")->required()->check(CLI::ExistingFile);
  t->add_option("--vocab-size", train->vocab_size, "vocabulary size incl. special tokens")->capture_default_str();
  t->add_option("--out", train->out, "output folder")->required();
  t->add_option("--special", train->special_tokens, "special tokens (the first is BOS/EOS)")->capture_default_str();
  t->add_option("--min-frequency", train->min_frequency, "merge only pairs seen this often")->capture_default_str();
  t->add_option("--model-max-length", train->model_max_length, "model_max_length in tokenizer_config.json")
      ->capture_default_str();
  t->callback([train] { run_train(*train); });

  auto enc = std::make_shared<EncodeArgs>();
  auto* e = cmd->add_subcommand("encode", "print the token ids of a text");
  e->add_option("--tokenizer", enc->tokenizer, "tokenizer folder or file")->required();
  e->add_option_function<std::string>("--text", [enc](const std::string& v) { enc->text = v, enc->text_given = true; },
                                      "text to encode");
  e->add_option("--file", enc->file, "file to encode")->check(CLI::ExistingFile);
  e->add_flag("--add-special", enc->add_special, "apply the post-processor (e.g. BOS)");
  e->add_flag("--json", enc->json, "print a JSON array");
  e->callback([enc] { run_encode(*enc); });

  auto dec = std::make_shared<DecodeArgs>();
  auto* d = cmd->add_subcommand("decode", "print the text of token ids");
  d->add_option("--tokenizer", dec->tokenizer, "tokenizer folder or file")->required();
  d->add_option("--ids", dec->ids, "comma-separated ids, e.g. 1,2,3")->required();
  d->add_flag("--skip-special", dec->skip_special, "leave out special tokens");
  d->callback([dec] { run_decode(*dec); });
});

}  // namespace forma::cli::tokenizer_command

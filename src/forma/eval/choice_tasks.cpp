#include "forma/eval/choice_tasks.h"

#include <cctype>

#include "forma/core/error.h"
#include "forma/core/progress.h"
#include "forma/eval/task_file.h"

namespace forma::eval {

double loglikelihood(Scorer& scorer, const tok::Tokenizer& tokenizer, std::string context, std::string continuation) {
  // Python's context.rstrip(): every trailing whitespace character moves to the continuation.
  size_t keep = context.find_last_not_of(" \t\n\r\f\v");
  keep = keep == std::string::npos ? 0 : keep + 1;
  continuation = context.substr(keep) + continuation;
  context.resize(keep);
  std::vector<int32_t> context_ids = tokenizer.encode(context, false);
  std::vector<int32_t> whole = tokenizer.encode(context + continuation, false);
  std::vector<int32_t> cont_ids(whole.begin() + static_cast<int64_t>(std::min(context_ids.size(), whole.size())), whole.end());
  if (context_ids.empty()) {
    auto start = tokenizer.bos_id() ? tokenizer.bos_id() : tokenizer.eos_id();
    check(start.has_value(), "an empty context needs a tokenizer with a BOS or EOS token");
    context_ids = {*start};
  }
  // Keep the most recent tokens when the pair is longer than the model's window.
  int64_t room = scorer.max_length() + 1 - static_cast<int64_t>(cont_ids.size());
  check(room >= 1, "a continuation of {} tokens does not fit the model's {} positions", cont_ids.size(), scorer.max_length());
  if (static_cast<int64_t>(context_ids.size()) > room) context_ids.erase(context_ids.begin(), context_ids.end() - room);
  double total = 0;
  for (double lp : scorer.continuation_logprobs(context_ids, cont_ids)) total += lp;
  return total;
}

TaskScore run_multiple_choice(Scorer& scorer, const tok::Tokenizer& tokenizer, const std::string& path, int64_t limit) {
  TaskScore score{"multiple_choice", 0, {}};
  double acc = 0, acc_norm = 0;
  Progress progress("multiple choice", limit, "examples");
  for_each_task_line(path, limit, [&](const TaskLine& line) {
    std::string context = line.string_field("context");
    auto choices = line.string_list_field("choices");
    int64_t gold = line.int_field("gold");
    check(gold >= 0 && gold < static_cast<int64_t>(choices.size()), "{}:{}: \"gold\" {} is not an index into {} choices",
          line.file, line.line, gold, choices.size());
    std::string delimiter = line.has("target_delimiter") ? line.string_field("target_delimiter") : " ";
    size_t best = 0, best_norm = 0;
    double best_ll = -1e300, best_ll_norm = -1e300;
    for (size_t i = 0; i < choices.size(); ++i) {
      std::string continuation = delimiter + choices[i];
      double ll = loglikelihood(scorer, tokenizer, context, continuation);
      // lm-evaluation-harness's acc_norm: the choice's own length in characters (Python's
      // len(choice)), without the delimiter.
      double ll_norm = ll / static_cast<double>(std::max<int64_t>(1, utf8_length(choices[i])));
      if (ll > best_ll) best_ll = ll, best = i;
      if (ll_norm > best_ll_norm) best_ll_norm = ll_norm, best_norm = i;
    }
    acc += static_cast<int64_t>(best) == gold;
    acc_norm += static_cast<int64_t>(best_norm) == gold;
    ++score.examples;
    progress.advance();
  });
  progress.finish();
  check(score.examples > 0, "{}: no examples", path);
  score.metrics = {{"acc", acc / static_cast<double>(score.examples)},
                   {"acc_norm", acc_norm / static_cast<double>(score.examples)}};
  return score;
}

std::string normalize_answer(const std::string& text) {
  std::string lowered;
  for (unsigned char c : text)
    if (!std::ispunct(c)) lowered += static_cast<char>(std::tolower(c));
  std::string out, word;
  auto flush = [&] {
    if (!word.empty() && word != "a" && word != "an" && word != "the") out += (out.empty() ? "" : " ") + word;
    word.clear();
  };
  for (char c : lowered) {
    if (std::isspace(static_cast<unsigned char>(c))) flush();
    else word += c;
  }
  flush();
  return out;
}

TaskScore run_exact_match(const GenerateFn& generate, const std::string& path, int64_t limit) {
  TaskScore score{"exact_match", 0, {}};
  double matched = 0;
  Progress progress("exact match", limit, "examples");
  for_each_task_line(path, limit, [&](const TaskLine& line) {
    std::string prompt = line.string_field("prompt");
    auto answers = line.has("answers") ? line.string_list_field("answers")
                                       : std::vector<std::string>{line.string_field("answer")};
    std::string output = normalize_answer(generate(prompt));
    bool hit = false;
    for (const auto& a : answers) hit |= normalize_answer(a) == output;
    matched += hit;
    ++score.examples;
    progress.advance();
  });
  progress.finish();
  check(score.examples > 0, "{}: no examples", path);
  score.metrics = {{"exact_match", matched / static_cast<double>(score.examples)}};
  return score;
}

}  // namespace forma::eval

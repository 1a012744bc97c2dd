// Multiple-choice and short-answer tasks, scored as lm-evaluation-harness scores them.
//  - multiple choice (HellaSwag, ARC, PIQA style): JSON lines {"context": str, "choices": [str...],
//    "gold": int, optional "target_delimiter": str (default " ")}. Each choice's log-likelihood
//    given the context; acc = the best choice is gold; acc_norm = the best after dividing by the
//    choice's length in characters.
//  - exact match (generation): JSON lines {"prompt": str, "answer": str} or {"answers": [str...]};
//    the greedy continuation up to a stop string, normalised (lower case, no punctuation, no
//    articles, single spaces) equals a normalised answer.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "forma/eval/scorer.h"
#include "forma/tokenizer/tokenizer.h"

namespace forma::eval {

struct TaskScore {
  std::string task;
  int64_t examples = 0;
  std::vector<std::pair<std::string, double>> metrics;  // name -> value, in report order
};

// log-likelihood of `continuation` after `context`, split into tokens as lm-eval does: the context's
// trailing spaces move to the continuation, and the continuation's tokens are those of
// encode(context + continuation) past encode(context).
double loglikelihood(Scorer& scorer, const tok::Tokenizer& tokenizer, std::string context, std::string continuation);

TaskScore run_multiple_choice(Scorer& scorer, const tok::Tokenizer& tokenizer, const std::string& path, int64_t limit);

// SQuAD's normalize_answer.
std::string normalize_answer(const std::string& text);

using GenerateFn = std::function<std::string(const std::string& prompt)>;
TaskScore run_exact_match(const GenerateFn& generate, const std::string& path, int64_t limit);

}  // namespace forma::eval

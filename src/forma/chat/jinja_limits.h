// What a template may do. Chat templates come from model folders, so they are untrusted code:
// every render runs under these bounds, and going past one is a forma::Error naming the limit
// (the evaluator adds the template line and column). The defaults are far above what real chat
// templates need (they loop once over the messages and tools) and low enough that a hostile or
// broken template fails within a few seconds and a few hundred MiB instead of hanging or crashing.
//
// Integers are 64-bit: where Python would produce a big integer, the operation is an error saying
// that the result overflows 64 bits (checked_* below), never a silent wrap-around or a SIGFPE.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace forma::chat {

struct TemplateLimits {
  // range() yields at most this many items: Jinja2's sandbox MAX_RANGE, the same bound transformers
  // renders chat templates under. Real templates use range() over the messages, a few hundred.
  int64_t max_range = 100'000;
  // Bytes of the rendered output and of any string a template builds (~, +, *, join, {% set %}
  // blocks, filters). 8 MiB is about 2 million tokens of text, more than any model's context;
  // a prompt longer than that could not be used anyway.
  size_t max_string_bytes = size_t{8} << 20;
  // Items of a list a template builds (+, *, filters). The messages a caller passes in are not
  // counted; a template needs lists about as long as them.
  size_t max_list_items = 1'000'000;
  // Evaluation steps of one render: one per statement, expression, loop iteration, item a filter
  // or `in` walks over, and KiB of string produced. Rendering a 1000-message conversation through
  // the shipped templates (tests/fixtures/chat_templates) takes 22,000 to 61,000; 10 million take
  // one to three seconds (nested `{% for %}` loops over range() stop there instead of running for
  // minutes) and leave room for conversations 150 times longer.
  int64_t max_steps = 10'000'000;
  // Macro calls nested in each other (a macro calling itself): each level costs C++ stack.
  int max_call_depth = 256;
  // Nesting of lists and dicts a template builds ({% set ns.x = [ns.x] %} in a loop): printing,
  // comparing and freeing them recurses once per level.
  int max_value_depth = 256;
};

// The limits of the render running on this thread, or the defaults outside one.
const TemplateLimits& active_template_limits();

// Counts `steps` evaluation steps against the running render's max_steps (no-op outside one).
void charge_template_steps(int64_t steps);

// Errors when a string of `bytes` or a list of `items` would pass the running render's limits.
void check_template_string_size(size_t bytes);
void check_template_list_size(size_t items);

// 64-bit integer arithmetic with Python's meaning; a result outside int64 is an error saying so.
int64_t checked_add(int64_t a, int64_t b);
int64_t checked_sub(int64_t a, int64_t b);
int64_t checked_mul(int64_t a, int64_t b);
int64_t checked_neg(int64_t a);
int64_t checked_abs(int64_t a);
int64_t checked_floor_div(int64_t a, int64_t b);  // b != 0 checked by the caller
int64_t checked_floor_mod(int64_t a, int64_t b);  // b != 0 checked by the caller
int64_t checked_pow(int64_t base, int64_t exponent);  // exponent >= 0
// A float converted to int (int filter, truncation); non-finite or out-of-range values are errors.
int64_t checked_float_to_int(double value);

// Makes `limits` the running render's for this thread while it lives (renders nest: the
// previous ones come back when it ends).
class TemplateBudget {
 public:
  explicit TemplateBudget(const TemplateLimits& limits);
  ~TemplateBudget();
  TemplateBudget(const TemplateBudget&) = delete;
  TemplateBudget& operator=(const TemplateBudget&) = delete;

  const TemplateLimits& limits() const { return limits_; }
  void charge(int64_t steps);

 private:
  TemplateLimits limits_;
  int64_t steps_ = 0;
  TemplateBudget* previous_;
};

}  // namespace forma::chat

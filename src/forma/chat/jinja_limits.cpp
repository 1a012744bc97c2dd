#include "forma/chat/jinja_limits.h"

#include <cmath>
#include <limits>

#include "forma/core/error.h"

namespace forma::chat {

namespace {

thread_local TemplateBudget* g_budget = nullptr;

[[noreturn]] void overflow(const char* op, int64_t a, int64_t b) {
  fail("integer overflow: {} {} {} does not fit in 64 bits (templates compute with 64-bit integers, not Python's big ones)",
       a, op, b);
}

}  // namespace

const TemplateLimits& active_template_limits() {
  static const TemplateLimits defaults;
  return g_budget ? g_budget->limits() : defaults;
}

void charge_template_steps(int64_t steps) {
  if (g_budget) g_budget->charge(steps);
}

void check_template_string_size(size_t bytes) {
  const size_t limit = active_template_limits().max_string_bytes;
  check(bytes <= limit, "string of {} bytes is longer than the template limit of {} bytes", bytes, limit);
}

void check_template_list_size(size_t items) {
  const size_t limit = active_template_limits().max_list_items;
  check(items <= limit, "list of {} items is longer than the template limit of {} items", items, limit);
}

TemplateBudget::TemplateBudget(const TemplateLimits& limits) : limits_(limits), previous_(g_budget) { g_budget = this; }

TemplateBudget::~TemplateBudget() { g_budget = previous_; }

void TemplateBudget::charge(int64_t steps) {
  steps_ += steps;
  check(steps_ <= limits_.max_steps, "template ran more than {} evaluation steps (a runaway loop?)", limits_.max_steps);
}

int64_t checked_add(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) overflow("+", a, b);
  return r;
}

int64_t checked_sub(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_sub_overflow(a, b, &r)) overflow("-", a, b);
  return r;
}

int64_t checked_mul(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) overflow("*", a, b);
  return r;
}

int64_t checked_neg(int64_t a) {
  check(a != std::numeric_limits<int64_t>::min(),
        "integer overflow: -({}) does not fit in 64 bits (templates compute with 64-bit integers, not Python's big ones)", a);
  return -a;
}

int64_t checked_abs(int64_t a) {
  check(a != std::numeric_limits<int64_t>::min(),
        "integer overflow: abs({}) does not fit in 64 bits (templates compute with 64-bit integers, not Python's big ones)", a);
  return a < 0 ? -a : a;
}

int64_t checked_floor_div(int64_t a, int64_t b) {
  // The one quotient of two int64 that does not fit (and traps on x86): INT64_MIN / -1.
  if (a == std::numeric_limits<int64_t>::min() && b == -1) overflow("//", a, b);
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

int64_t checked_floor_mod(int64_t a, int64_t b) {
  if (b == -1) return 0;  // also INT64_MIN % -1, which traps in C++ and is 0 in Python
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

int64_t checked_pow(int64_t base, int64_t exponent) {
  if (base == 0) return exponent == 0 ? 1 : 0;
  if (base == 1) return 1;
  if (base == -1) return exponent % 2 == 0 ? 1 : -1;
  int64_t result = 1;
  int64_t factor = base;
  int64_t e = exponent;
  // |base| >= 2, so an exponent of 63 or more overflows; squaring stops there.
  if (e >= 64) fail("integer overflow: {} ** {} does not fit in 64 bits (templates compute with 64-bit integers, not Python's big ones)",
                    base, exponent);
  while (true) {
    if (e & 1) {
      if (__builtin_mul_overflow(result, factor, &result)) overflow("**", base, exponent);
    }
    e >>= 1;
    if (e == 0) break;
    if (__builtin_mul_overflow(factor, factor, &factor)) overflow("**", base, exponent);
  }
  return result;
}

int64_t checked_float_to_int(double value) {
  check(std::isfinite(value), "cannot convert float {} to integer", value);
  // [-2^63, 2^63): both bounds are exact doubles.
  check(value >= -9223372036854775808.0 && value < 9223372036854775808.0,
        "integer overflow: {} does not fit in 64 bits (templates compute with 64-bit integers, not Python's big ones)", value);
  return static_cast<int64_t>(value);
}

}  // namespace forma::chat

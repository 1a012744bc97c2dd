// Linked into every executable of a FORMA_SANITIZE=ON build (never into a normal one): the default
// runtime options of AddressSanitizer, LeakSanitizer and UndefinedBehaviorSanitizer, so that the
// test binaries and the forma binary the CLI tests start behave the same under ctest, by hand or
// as children. ASAN_OPTIONS / LSAN_OPTIONS / UBSAN_OPTIONS in the environment still override them.
// Every option and suppression here is explained; keep them narrow.
extern "C" {

// ASan strict defaults, plus:
// - halt_on_error / abort_on_error: the first report fails the test with a stack trace.
const char* __asan_default_options() {
  return "strict_string_checks=1:detect_stack_use_after_return=0:check_initialization_order=1:"
         "halt_on_error=1";
}

// The leak checker reads cmake/lsan.supp (leaks inside LibTorch's own uninstrumented libraries).
const char* __lsan_default_options() { return "suppressions=" FORMA_SANITIZER_DIR "/lsan.supp:print_suppressions=0"; }

// UBSan: every report is an error (no silent recovery), with a stack trace.
const char* __ubsan_default_options() {
  return "halt_on_error=1:print_stacktrace=1:suppressions=" FORMA_SANITIZER_DIR "/ubsan.supp";
}

}  // extern "C"

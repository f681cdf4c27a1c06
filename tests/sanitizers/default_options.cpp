// The sanitizers' default options for the test executables of a sanitizer
// build (BACKLINE_SANITIZE); ASAN_OPTIONS, UBSAN_OPTIONS and TSAN_OPTIONS in
// the environment still win. Each runtime reads only its own.

#define BACKLINE_SANITIZER_HOOK extern "C" __attribute__((visibility("default"), used)) const char*

BACKLINE_SANITIZER_HOOK __asan_default_options() {
  return "detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1";
}

BACKLINE_SANITIZER_HOOK __ubsan_default_options() { return "print_stacktrace=1"; }

BACKLINE_SANITIZER_HOOK __tsan_default_options() {
  return "suppressions=" BACKLINE_TSAN_SUPPRESSIONS ":second_deadlock_stack=1";
}

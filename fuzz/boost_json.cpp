// Boost.JSON compiled into the fuzzers, not linked from the shared library:
// so its parser is instrumented and the fuzzer sees what paths inputs take.
#include <boost/json/src.hpp>

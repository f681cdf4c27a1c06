#pragma once
// glibc malloc settings for a process that runs backline's actors.
//
// glibc gives busy threads arenas of their own, and gives a thread arena's
// free memory back to the kernel as soon as 128 KiB of it sits at the top
// (M_TRIM_THRESHOLD), so the next burst faults the same pages in again, zeroed.
// The journal's threads and the actors' allocate and free in bursts (a batch,
// its answers), and a run fell into one of two speeds depending on which
// arenas its threads happened to share: journal_bench --quick --appenders 256
// gave 0.49-0.56 of its ceiling in some runs and 0.67-0.74 in others.
// Keeping up to 16 MiB free per arena made every run the fast one:
// 0.77-0.81 in four runs (and 0.71-0.80 with GLIBC_TUNABLES trim thresholds
// of 8 to 256 MiB; 0.49-0.51 in three runs with 64 arenas and the default).
// Raising M_MMAP_THRESHOLD to 4 MiB as well brought the slow runs back (two
// of four), so it is left as glibc sets it.
//
// Built with tcmalloc (BACKLINE_MALLOC, the default outside sanitizer
// builds), glibc's malloc serves nothing and mallopt is tcmalloc's no-op.

#include <malloc.h>

#ifdef BACKLINE_TCMALLOC
#include <gperftools/malloc_extension_c.h>
#endif

namespace backline {

/// Call first thing in main, before any thread starts.
inline void tune_malloc() {
  mallopt(M_TRIM_THRESHOLD, 16 << 20);
}

/// Gives the memory the allocator holds free back to the kernel, so that
/// the resident size counts what is in use (the benchmarks' memory figures).
/// tcmalloc keeps freed pages for reuse: without this, memory freed by an
/// earlier phase would hide what the next one allocates.
inline void release_free_memory() {
#ifdef BACKLINE_TCMALLOC
  MallocExtension_ReleaseFreeMemory();
#endif
  malloc_trim(0);
}

} // namespace backline

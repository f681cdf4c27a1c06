#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded time from its committed seeds:
#   fuzz/run.sh FUZZER SEED_DIR WORK_DIR SECONDS
# New inputs it finds go to WORK_DIR/corpus (not committed), a crash to
# WORK_DIR/artifacts/. BACKLINE_FUZZ_SECONDS, when set, overrides SECONDS.
# A long local run:
#   fuzz/run.sh build/asan/fuzz/slack_format_fuzzer fuzz/corpus/slack_format /tmp/fuzz-work 3600
# Re-run one crash:  FUZZER WORK_DIR/artifacts/crash-…
set -euo pipefail
fuzzer=$1 seeds=$2 work=$3 seconds=${BACKLINE_FUZZ_SECONDS:-$4}
mkdir -p "$work/corpus" "$work/artifacts"
exec "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
     -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$work/corpus" "$seeds"

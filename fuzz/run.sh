#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded time from its committed seeds:
#   fuzz/run.sh FUZZER SEED_DIR WORK_DIR SECONDS
# New inputs it finds go to WORK_DIR/corpus (not committed), a crash to
# WORK_DIR/artifacts/. BACKLINE_FUZZ_SECONDS overrides SECONDS, e.g. a long
# local run:  BACKLINE_FUZZ_SECONDS=3600 ctest -R 'fuzz: slack_format' -V
# Re-run one crash:  FUZZER WORK_DIR/artifacts/crash-…
set -euo pipefail
fuzzer=$1 seeds=$2 work=$3 seconds=${BACKLINE_FUZZ_SECONDS:-$4}
mkdir -p "$work/corpus" "$work/artifacts"
exec "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
     -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$work/corpus" "$seeds"

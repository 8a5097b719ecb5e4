#!/usr/bin/env bash
# Runs the reader fuzzer for a bounded time from the committed seed corpus (a
# real file with two pools, made by tests/shm/fixture.cpp), writing new inputs
# to a scratch corpus in the build directory. Exit status is libFuzzer's: 0 if
# nothing crashed.
#   run_fuzz.sh FUZZER SEED_DIR SCRATCH_DIR [SECONDS]
set -euo pipefail
fuzzer=$1 seeds=$2 scratch=$3 seconds=${4:-60}
mkdir -p "$scratch"
exec "$fuzzer" "$scratch" "$seeds" -max_total_time="$seconds" -timeout=10 \
  -rss_limit_mb=2048 -print_final_stats=1

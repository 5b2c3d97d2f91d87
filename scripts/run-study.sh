#!/usr/bin/env bash
# run-study.sh - the main job: set up (Debian packages), build, and run the default scaling study on Fashion-MNIST.
# Extra arguments go to `nfscale study` (e.g. --preset full). The report: studies/<preset>/report/index.html
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
BUILD=${NFSCALE_BUILD_DIR:-build}
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$BUILD" -j "$(nproc)" --target nfscale_cli
# Two single-threaded workers: two trials at once use the cores better than one trial on two threads (a second
# intra-op thread gives mini-F0 1.1-1.4x and mini-F3 1.0-1.1x; docs/performance.md, issue 12 session 12).
exec "$BUILD/bin/nfscale" study --workers 2 "$@"

#!/usr/bin/env bash
# run-study.sh - the main job: set up (Debian packages), build, and run the default scaling study on Fashion-MNIST.
# Extra arguments go to `nfscale study` (e.g. --preset full). The report: studies/<preset>/report/index.html
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
BUILD=${NFSCALE_BUILD_DIR:-build}
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$BUILD" -j "$(nproc)" --target nfscale_cli
# Two single-threaded workers: the mini models are too small for two intra-op threads to pay off.
exec "$BUILD/bin/nfscale" study --workers 2 "$@"

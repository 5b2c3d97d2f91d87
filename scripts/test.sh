#!/usr/bin/env bash
# test.sh - set up (Debian packages), build, start a throwaway PostgreSQL cluster for the results-store tests, and
# run the whole test suite with CTest (the cluster is stopped and deleted on every exit).
# Usage: scripts/test.sh [extra ctest args]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
scripts/setup.sh
BUILD=${NFSCALE_BUILD_DIR:-build}
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$BUILD" -j "$(nproc)"

# The PostgreSQL backend's tests read NFSCALE_TEST_PG (a superuser URI of this cluster); without it they skip,
# and under CI=true they fail.
PG_OUT=$("$ROOT/scripts/pg-test-cluster.sh" start)
PG_DIR=$(head -n 1 <<<"$PG_OUT")
trap '"$ROOT/scripts/pg-test-cluster.sh" stop "$PG_DIR"' EXIT
eval "$(tail -n +2 <<<"$PG_OUT")"
export NFSCALE_TEST_PG
echo "[test] PostgreSQL test cluster in $PG_DIR"

cd "$BUILD"
ctest --output-on-failure -j "$(nproc)" --timeout 900 "$@"

#!/usr/bin/env bash
# setup.sh - idempotent installer for every Debian package nfscale needs (build, tests, data, benchmarks),
# and selection of OpenBLAS (pthread) as the system BLAS that LibTorch loads.
# Usage: scripts/setup.sh            (as root, or with sudo available)
set -euo pipefail

PKGS=(
  # toolchain
  g++ cmake ninja-build pkg-config git
  # network namespaces for the two-host distributed test
  iproute2
  # deep-learning engine, distributed backend, fast BLAS
  libtorch-dev libgloo-dev libopenblas0-pthread libopenblas-dev libdnnl-dev ocl-icd-opencl-dev
  # libraries
  libcli11-dev nlohmann-json3-dev libtomlplusplus-dev libsqlite3-dev libjpeg62-turbo-dev libpng-dev libeigen3-dev zlib1g-dev libboost-dev
  # results store: the PostgreSQL client library, and the server the tests start a throwaway cluster of
  libpq-dev postgresql
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # data: Fashion-MNIST (pre-training) and sklearn's digits (fine-tuning target)
  dataset-fashion-mnist python3-sklearn
  # benchmark peer (Python, same architecture)
  python3-torch
  # report figures (cairo + pango, DejaVu fonts) and the real-browser report test (headless Chromium)
  libcairo2-dev libpango1.0-dev fonts-dejavu-core chromium
)

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[setup] installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "[setup] all Debian packages present"
fi

# LibTorch links libblas.so.3 / liblapack.so.3 through Debian's alternatives; the reference BLAS is up to 16x slower.
arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
for lib in libblas.so.3 liblapack.so.3; do
  target=/usr/lib/$arch/openblas-pthread/$lib
  if [ -e "$target" ]; then
    $SUDO update-alternatives --set "$lib-$arch" "$target" >/dev/null
  fi
done
echo "[setup] BLAS: $(readlink -f /usr/lib/$arch/libblas.so.3)"

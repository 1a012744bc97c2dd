#!/usr/bin/env bash
# Installs everything forma needs on a Debian 12 machine: Debian's packages (toolchain and C++
# libraries) and a project-local Python environment, .venv, holding PyPI's torch wheel (LibTorch:
# headers, libraries, TorchConfig.cmake) and the reference libraries of the tests. Idempotent: when
# everything is present it only checks and returns in a few seconds. Runs apt-get through sudo when
# not root. The test assets are in the repository (tests/assets, data/): nothing is fetched for them.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv="${FORMA_VENV:-$here/.venv}"

# Debian packages: build toolchain, BLAS, parsing/CLI/logging libraries, Gloo's headers (the wheel
# ships Gloo compiled into libtorch_cpu but not its headers), the HTTP server, the test frameworks,
# clang with its libFuzzer and sanitizer runtimes (make fuzz), headless Chromium for the web page's test.
packages=(
  build-essential cmake ninja-build pkg-config git ccache python3-venv
  libyaml-cpp-dev nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev
  libpcre2-dev libutf8proc-dev libsentencepiece-dev libcpp-httplib-dev libgloo-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-14-dev
  chromium chromium-driver
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

# The Python environment: reinstalled only when scripts/requirements.txt changed since the last run.
requirements="$here/scripts/requirements.txt"
stamp="$venv/.forma-requirements"
if [ ! -x "$venv/bin/python3" ]; then
  echo "setup: creating $venv"
  python3 -m venv "$venv"
fi
if ! cmp -s "$requirements" "$stamp"; then
  echo "setup: installing scripts/requirements.txt into $venv (torch's CUDA wheel and its libraries: ~6 GB)"
  "$venv/bin/pip" install --disable-pip-version-check -q -r "$requirements"
  cp "$requirements" "$stamp"
fi
echo "setup: ok ($("$venv/bin/python3" -c 'import torch; print("LibTorch", torch.__version__, "CUDA", torch.version.cuda)'))"

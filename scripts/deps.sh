#!/usr/bin/env bash
# Installs the Debian packages backline needs, only those missing.
#   scripts/deps.sh          what building and serving need
#   scripts/deps.sh --test   and what the test suite needs
set -euo pipefail

packages=(g++ cmake ninja-build pkg-config
          libcaf-dev libcpp-httplib-dev libboost-json1.81-dev libboost-url1.81-dev librocksdb-dev libssl-dev
          libgoogle-perftools-dev)  # tcmalloc (CMakeLists.txt, BACKLINE_MALLOC)
# chromium: the real browser the web page tests drive (tests/web, playwright-core);
# fonts-noto-color-emoji: so that emoji in the tests' screenshots are not empty boxes;
# clang with its runtimes: the sanitizer builds and libFuzzer (scripts/test);
# ccache: a fresh clone rebuilds only what changed since the last build (scripts/test).
test_packages=(catch2 nodejs npm chromium fonts-noto-color-emoji clang libclang-rt-14-dev ccache)

wanted=("${packages[@]}")
if [[ "${1:-}" == "--test" ]]; then
  wanted+=("${test_packages[@]}")
fi

missing=()
for p in "${wanted[@]}"; do
  # NodeSource's nodejs package ships npm itself and conflicts with Debian's npm.
  if [[ "$p" == npm ]] && command -v npm >/dev/null; then continue; fi
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if (( ${#missing[@]} )); then
  echo "backline: installing Debian packages: ${missing[*]}"
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Sourced by tools/demo, tools/test and tools/bench: installs the Debian packages the build
# needs (only when missing) and builds Release into build/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# DSQ_SANITIZE=address|thread builds an instrumented tree in build-address/ or build-thread/.
BUILD="$ROOT/build${DSQ_SANITIZE:+-$DSQ_SANITIZE}"

BUILD_PACKAGES=(cmake g++ ninja-build pkg-config libtbb-dev libarchive-dev libxxhash-dev libssl-dev
  libsimdjson-dev libboost-dev libbenchmark-dev libgtest-dev libgmock-dev libzstd-dev zlib1g-dev
  libcli11-dev zstd tar gzip bc time python3)

install_packages() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "installing: ${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

build_release() {
  local type=Release
  [ -z "${DSQ_SANITIZE:-}" ] || type=RelWithDebInfo
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE="$type" -DDSQ_SANITIZE="${DSQ_SANITIZE:-}" >/dev/null
  cmake --build "$BUILD" -j "$(nproc)"
}

install_packages "${BUILD_PACKAGES[@]}"
build_release

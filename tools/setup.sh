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

# TSan sees only instrumented code, and Debian's libtbb is not: every hand-over between TBB
# threads would look like a race. So the thread build links a TSan-instrumented oneTBB built
# from the Debian source of the installed version (its checksum checked against the .dsc).
build_instrumented_tbb() {
  local prefix="$BUILD/tbb-tsan"
  [ -f "$prefix/lib/cmake/TBB/TBBConfig.cmake" ] && return 0
  install_packages curl ca-certificates xz-utils
  local full upstream pool src
  full=$(dpkg-query -W -f='${Version}' libtbb12)
  upstream=$(dpkg-query -W -f='${source:Upstream-Version}' libtbb12)
  pool="http://deb.debian.org/debian/pool/main/o/onetbb"
  src="$BUILD/tbb-src"
  rm -rf "$src" && mkdir -p "$src"
  curl -sSfL -o "$src/tbb.dsc" "$pool/onetbb_${full}.dsc"
  curl -sSfL -o "$src/tbb.tar.xz" "$pool/onetbb_${upstream}.orig.tar.xz"
  local want
  want=$(awk '/^Checksums-Sha256:/ {on=1; next} /^[^ ]/ {on=0} on && $3 ~ /orig.tar.xz$/ {print $1}' "$src/tbb.dsc")
  echo "$want  $src/tbb.tar.xz" | sha256sum -c --quiet
  tar -C "$src" -xf "$src/tbb.tar.xz"
  cmake -S "$src/oneTBB-$upstream" -B "$src/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DTBB_TEST=OFF -DTBB_EXAMPLES=OFF -DTBBMALLOC_BUILD=OFF -DTBB_STRICT=OFF -DTBB_SANITIZE=thread \
    -DCMAKE_INSTALL_PREFIX="$prefix" >/dev/null
  cmake --build "$src/build" -j "$(nproc)" >/dev/null
  cmake --install "$src/build" >/dev/null
  rm -rf "$src"
}

build_release() {
  local type=Release extra=()
  [ -z "${DSQ_SANITIZE:-}" ] || type=RelWithDebInfo
  if [ "${DSQ_SANITIZE:-}" = thread ]; then
    build_instrumented_tbb
    extra=(-DTBB_DIR="$BUILD/tbb-tsan/lib/cmake/TBB")
  fi
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE="$type" -DDSQ_SANITIZE="${DSQ_SANITIZE:-}" \
    "${extra[@]}" >/dev/null
  cmake --build "$BUILD" -j "$(nproc)"
}

install_packages "${BUILD_PACKAGES[@]}"
build_release

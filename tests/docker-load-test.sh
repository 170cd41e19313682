#!/usr/bin/env bash
# Loads squashed archives into a real dockerd and compares the filesystem (docker export of a
# container of each image) and the config with the original's. The OCI half of the archive is
# imported into containerd (what Docker's containerd image store does: index.json, content
# digests, containerd's own layer applier) and its unpacked rootfs compared the same way; skopeo
# and umoci read it too. Needs DOCKER_HOST (tools/test starts a daemon; its containerd socket
# comes in DSQ_CONTAINERD_SOCKET); exits 77 (skipped) without it.
set -euo pipefail
BIN="$1" GEN="$2"
[ -n "${DOCKER_HOST:-}" ] || { echo "DOCKER_HOST not set: no daemon to test against"; exit 77; }
docker version >/dev/null
WORK=$(mktemp -d /tmp/dsq-docker.XXXXXX)
CTR=(ctr -a "${DSQ_CONTAINERD_SOCKET:-}" -n dsq-test)
cleanup() {
  for m in "$WORK"/mnt.*; do [ -d "$m" ] && "${CTR[@]}" images unmount "$m" >/dev/null 2>&1; done
  "${CTR[@]}" images rm docker.io/dsq-test/original:latest docker.io/dsq-test/squashed:all \
    docker.io/dsq-test/squashed:partial docker.io/dsq-test/squashed:gzip docker.io/dsq-test/squashed:zstd \
    >/dev/null 2>&1 || true
  docker rm -f $(cat "$WORK/containers" 2>/dev/null) >/dev/null 2>&1 || true
  docker rmi -f dsq-test/original:latest dsq-test/squashed:all dsq-test/squashed:partial \
    dsq-test/squashed:gzip dsq-test/squashed:zstd >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

cat > "$WORK/spec" <<'SPEC'
tag dsq-test/original:latest
layer
dir etc
file etc/passwd root:x:0:0
file etc/motd v1
dir usr
dir usr/bin
file usr/bin/tool v1 mode=0755
hardlink usr/bin/tool-link usr/bin/tool mode=0755
dir usr/share
dir usr/share/doc
file usr/share/doc/a a
file usr/share/doc/b b
symlink usr/bin/alt /usr/share/doc/a
dir var
dir var/cache
file var/cache/big size=100000
empty ENV%20A%3D1
layer
dir etc
file etc/motd v2 mode=0600 uid=1000 gid=1000
dir usr
dir usr/bin
file usr/bin/tool v2 mode=0755
dir var
whiteout var/cache
file name%20with%20spaces x
file caf%C3%A9 unicode
empty LABEL%20x%3Dy
layer
dir usr
dir usr/share
dir usr/share/doc
opaque usr/share/doc
file usr/share/doc/new fresh
file etc.wh.notawhiteout kept
symlink dangling /nowhere
dir var
file var/cache now-a-file
empty CMD%20sh
SPEC
"$GEN" spec "$WORK/spec" "$WORK/original.tar"

source "$(dirname "$0")/docker-tree.sh"

# The unpacked rootfs of an image imported into containerd, listed like tree_of.
containerd_tree_of() {
  local archive="$1" ref="$2" out="$3"
  "${CTR[@]}" images import --snapshotter native "$archive" >/dev/null
  mkdir -p "$WORK/mnt.$out"
  "${CTR[@]}" images mount --snapshotter native "$ref" "$WORK/mnt.$out" >/dev/null
  # A directory's size is its filesystem's bookkeeping (tmpfs counts past entries), not content.
  (cd "$WORK/mnt.$out" && find . -mindepth 1 -printf '%y %m %U:%G %s %T@ %p %l\n' |
    sed -E 's/^(d [0-7]+ [0-9]+:[0-9]+) [0-9]+ /\1 - /' | sort -k6 >"$WORK/$out")
  (cd "$WORK/mnt.$out" && find . -type f -exec sha256sum {} + | sort -k2 >>"$WORK/$out")
  "${CTR[@]}" images unmount "$WORK/mnt.$out" >/dev/null
}

docker load -i "$WORK/original.tar" >/dev/null
tree_of dsq-test/original:latest "$WORK/tree.original"
docker image inspect -f '{{json .Config}}' dsq-test/original:latest >"$WORK/config.original"

for mode in all partial gzip zstd; do
  args=()
  case "$mode" in
    partial) args=(-f 3) ;;
    gzip | zstd) args=(-f 3 --compression "$mode") ;;
  esac
  "$BIN" "${args[@]}" -t "dsq-test/squashed:$mode" --output-path "$WORK/$mode.tar" "docker-archive:$WORK/original.tar"
  docker load -i "$WORK/$mode.tar" >/dev/null
  tree_of "dsq-test/squashed:$mode" "$WORK/tree.$mode"
  docker image inspect -f '{{json .Config}}' "dsq-test/squashed:$mode" >"$WORK/config.$mode"
  diff -u "$WORK/tree.original" "$WORK/tree.$mode" || { echo "FAIL: filesystem differs ($mode)"; exit 1; }
  diff -u "$WORK/config.original" "$WORK/config.$mode" || { echo "FAIL: config differs ($mode)"; exit 1; }
  layers=$(docker image inspect -f '{{len .RootFS.Layers}}' "dsq-test/squashed:$mode")
  expected=$([ "$mode" = all ] && echo 1 || echo 3)  # -f 3 keeps L0, ENV, L1
  if [ "$mode" = gzip ] || [ "$mode" = zstd ]; then
    top=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["Layers"][-1])' \
      <(tar -xOf "$WORK/$mode.tar" manifest.json))
    magic=$([ "$mode" = gzip ] && echo gzip || echo Zstandard)
    tar -xOf "$WORK/$mode.tar" "$top" | file - | grep -q "$magic compressed" ||
      { echo "FAIL: $mode: new layer is not $mode-compressed"; exit 1; }
  fi
  [ "$layers" = "$expected" ] || { echo "FAIL: $mode has $layers layers, expected $expected"; exit 1; }
  # The OCI half: skopeo reads the layout, umoci unpacks it.
  mkdir -p "$WORK/oci.$mode"
  tar -x -C "$WORK/oci.$mode" -f "$WORK/$mode.tar"
  skopeo inspect "oci:$WORK/oci.$mode:$mode" >/dev/null
  if [ "$mode" != zstd ]; then  # umoci 0.4 reads gzip and plain layers only
    umoci unpack --rootless --image "$WORK/oci.$mode:$mode" "$WORK/bundle.$mode" >/dev/null
    [ "$(cat "$WORK/bundle.$mode/rootfs/usr/bin/tool-link")" = v1 ] || { echo "FAIL: umoci: hard link content"; exit 1; }
  fi
  echo "ok: $mode squash loads with the original's filesystem and config ($layers layers)"
  if [ -n "${DSQ_CONTAINERD_SOCKET:-}" ]; then
    [ -s "$WORK/ctr.original" ] || containerd_tree_of "$WORK/original.tar" docker.io/dsq-test/original:latest ctr.original
    containerd_tree_of "$WORK/$mode.tar" "docker.io/dsq-test/squashed:$mode" "ctr.$mode"
    diff -u "$WORK/ctr.original" "$WORK/ctr.$mode" || { echo "FAIL: containerd rootfs differs ($mode)"; exit 1; }
    echo "ok: $mode squash imports into containerd with the original's filesystem"
  fi
done

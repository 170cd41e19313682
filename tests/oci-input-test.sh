#!/usr/bin/env bash
# OCI layout inputs without a daemon: oci:DIR, oci:DIR:REF and oci-archive:PATH give the same
# squash as the docker-archive they were made from; a multi-platform nested index is descended
# by --platform (attestations skipped, other platforms' blobs absent); and damaged layouts (bad
# digests, truncated gzip and zstd, missing blobs, unknown media types, nesting too deep) each
# give one clear line, exit 1, and leave nothing behind.
set -euo pipefail
BIN="$1"
GEN="$2"
HERE="$(cd "$(dirname "$0")" && pwd)"
WORK=$(mktemp -d /tmp/dsq-oci.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export TMPDIR="$WORK/tmp"
mkdir -p "$TMPDIR"
export SOURCE_DATE_EPOCH=1700000000
fail() { echo "FAIL: $*" >&2; exit 1; }

cat >"$WORK/spec" <<'SPEC'
tag oci/test:v1
layer gzip
dir etc
file etc/a one
file etc/b two
dir usr
file usr/tool t mode=0755
layer zstd
dir etc
file etc/a three
whiteout etc/b
hardlink usr/tool-link usr/tool mode=0755
layer gzip
file top x
layer
dir etc
file etc/c plain
SPEC
"$GEN" spec "$WORK/spec" "$WORK/image.tar"
mkdir "$WORK/layout"
tar -C "$WORK/layout" -xf "$WORK/image.tar"
rm "$WORK/layout/manifest.json"  # an OCI layout only

# new_layer ARCHIVE: the diff_id of the squashed layer in an output archive.
new_layer() {
  python3 - "$1" <<'PY'
import json, sys, tarfile
with tarfile.open(sys.argv[1]) as t:
    index = json.load(t.extractfile("index.json"))
    manifest = json.load(t.extractfile("blobs/sha256/" + index["manifests"][0]["digest"][7:]))
    config = json.load(t.extractfile("blobs/sha256/" + manifest["config"]["digest"][7:]))
print(config["rootfs"]["diff_ids"][-1])
PY
}

squash() { "$BIN" -f "$1" --output-path "$WORK/out.tar" "$2" 2>"$WORK/err" || fail "$2: $(cat "$WORK/err")"; new_layer "$WORK/out.tar"; }
for f in 2 3; do
  want=$(squash "$f" "docker-archive:$WORK/image.tar")
  for input in "oci:$WORK/layout" "oci:$WORK/layout:v1" "oci:$WORK/layout:docker.io/oci/test:v1" \
    "oci-archive:$WORK/image.tar" "oci-archive:$WORK/image.tar:v1"; do
    [ "$(squash "$f" "$input")" = "$want" ] || fail "$input -f $f: a different layer than the docker-archive's"
  done
done
echo "ok: oci:, oci:REF and oci-archive: inputs squash like the docker-archive"

# expect_error NAME MESSAGE ARGS...: exit 1, one line naming MESSAGE, no output, no temp file.
expect_error() {
  local name="$1" message="$2"
  shift 2
  local rc=0
  "$BIN" --output-path "$WORK/bad-out.tar" "$@" 2>"$WORK/err" || rc=$?
  [ "$rc" -eq 1 ] || fail "$name: exit $rc, expected 1: $(cat "$WORK/err")"
  [ "$(wc -l <"$WORK/err")" -eq 1 ] || fail "$name: expected one line: $(cat "$WORK/err")"
  grep -qF -- "$message" "$WORK/err" || fail "$name: expected '$message' in: $(cat "$WORK/err")"
  [ ! -e "$WORK/bad-out.tar" ] || fail "$name: output left behind"
  [ -z "$(ls -A "$TMPDIR")" ] || fail "$name: temp files left: $(ls -A "$TMPDIR")"
  [ -z "$(ls -A "$WORK" | grep '^\.')" ] || fail "$name: temp files left in $WORK"
  echo "ok: $name: $(cat "$WORK/err")"
}

# copy NAME: a fresh copy of the layout to damage.
copy() { rm -rf "$WORK/$1"; cp -r "$WORK/layout" "$WORK/$1"; echo "$WORK/$1"; }
edit() { python3 "$HERE/oci-edit.py" "$@"; }

expect_error "unknown ref" "no image named 'v2' (it has 'v1', 'docker.io/oci/test:v1')" "oci:$WORK/layout:v2"
expect_error "not a layout" "not a directory" "oci:$WORK/nowhere"

# Multi-platform: the amd64 image is found, arm64's blobs are absent, s390x is not there.
dir=$(copy multi)
edit "$dir" nest multi
want=$(squash 2 "docker-archive:$WORK/image.tar")
"$BIN" -f 2 --platform linux/amd64 --output-path "$WORK/out.tar" "oci:$dir:multi" || fail "multi-platform"
[ "$(new_layer "$WORK/out.tar")" = "$want" ] || fail "multi-platform: wrong image"
echo "ok: multi-platform index: linux/amd64 picked, attestation and arm64 skipped"
expect_error "absent platform blobs" "blobs/sha256/1111111111111111111111111111111111111111111111111111111111111111: missing from the layout" --platform linux/arm64 "oci:$dir:multi"
expect_error "no such platform" "no image for platform linux/s390x (it has linux/arm64/v8, linux/amd64; choose one with --platform)" --platform linux/s390x "oci:$dir:multi"

dir=$(copy deep)
edit "$dir" deep 9
expect_error "nesting" "image indexes nested more than 8 deep" "oci:$dir"

dir=$(copy flip)
edit "$dir" flip 0
expect_error "bad digest" "$dir:blobs/sha256/" "oci:$dir"
grep -qE "blob has digest|corrupt compressed layer" "$WORK/err" || fail "bad digest: $(cat "$WORK/err")"

dir=$(copy trunc-gzip)
edit "$dir" truncate 0 60
expect_error "truncated gzip" "truncated compressed layer" "oci:$dir"

dir=$(copy trunc-zstd)
edit "$dir" truncate 1 40
expect_error "truncated zstd" "truncated compressed layer" "oci:$dir"

dir=$(copy drop)
edit "$dir" drop 2
expect_error "missing blob" "missing from the layout" "oci:$dir"

dir=$(copy media)
edit "$dir" media-type 1 application/x-unknown
expect_error "unknown media type" "unsupported layer media type 'application/x-unknown'" "oci:$dir"

dir=$(copy mislabelled)
edit "$dir" media-type 0 application/vnd.oci.image.layer.v1.tar+zstd
expect_error "wrong media type" "content is not what its media type says" "oci:$dir"

dir=$(copy config)
edit "$dir" config-byte
expect_error "config digest" "config does not match its descriptor's size and digest" "oci:$dir"

# An uncompressed layer is read in place (only its headers, unless --verify): --verify hashes it.
dir=$(copy flip-plain)
edit "$dir" flip 3
expect_error "uncompressed layer, --verify" "but the config's diff_id is" --verify "oci:$dir"

# A zstd layer whose tar is exactly 1 MiB (the decoder's output block) ends where it should.
printf 'layer zstd\nfile big size=1047040\nlayer\nfile x y\n' >"$WORK/exact.spec"
"$GEN" spec "$WORK/exact.spec" "$WORK/exact.tar"
"$BIN" --output-path "$WORK/exact-out.tar" "docker-archive:$WORK/exact.tar" 2>"$WORK/err" ||
  fail "a 1 MiB zstd layer: $(cat "$WORK/err")"
echo "ok: a zstd layer of exactly one output block decodes"

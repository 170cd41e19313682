#!/usr/bin/env bash
# What a real dockerd will not do on demand, against tests/fake-dockerd.py: an error inside the
# save stream, HTTP 500, a dropped connection mid-save and mid-load, an errorDetail load answer
# (each: one clear line, exit 1, no temp file left), and a containerd image store (the new layer
# must reach it gzip-compressed with OCI media types). Also checks what a classic store is sent:
# only manifest.json, and no kept layer it already has.
set -euo pipefail
BIN="$1"
GEN="$2"
HERE="$(cd "$(dirname "$0")" && pwd)"
WORK=$(mktemp -d /tmp/dsq-fake.XXXXXX)
PID=""
stop() { [ -z "$PID" ] || { kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null || true; PID=""; }; }
trap 'stop; rm -rf "$WORK"' EXIT
"$GEN" sample "$WORK/sample.tar" >/dev/null
export TMPDIR="$WORK/tmp"
mkdir -p "$TMPDIR"
export DOCKER_HOST="unix://$WORK/fake.sock"
fail() { echo "FAIL: $*" >&2; exit 1; }

start() {
  stop
  rm -f "$WORK/fake.sock"
  python3 "$HERE/fake-dockerd.py" "$WORK/fake.sock" "$WORK/sample.tar" "$1" "$WORK/capture.tar" &
  PID=$!
  for _ in $(seq 1 50); do [ -S "$WORK/fake.sock" ] && return 0; sleep 0.1; done
  fail "fake daemon did not start"
}

# expect_error MODE MESSAGE ARGS...: exit 1, one line naming MESSAGE, nothing left in TMPDIR.
expect_error() {
  local mode="$1" message="$2"
  shift 2
  start "$mode"
  local rc=0
  "$BIN" "$@" 2>"$WORK/err" || rc=$?
  [ "$rc" -eq 1 ] || fail "$mode: exit $rc, expected 1: $(cat "$WORK/err")"
  [ "$(wc -l <"$WORK/err")" -eq 1 ] || fail "$mode: expected one line: $(cat "$WORK/err")"
  grep -qF -- "$message" "$WORK/err" || fail "$mode: expected '$message' in: $(cat "$WORK/err")"
  [ -z "$(ls -A "$TMPDIR")" ] || fail "$mode: left behind: $(ls -A "$TMPDIR")"
  echo "ok: $mode: $(cat "$WORK/err")"
}

expect_error save-error "fake: layer vanished during export (saving app:1: the error ended the stream" -t app:sq app:1
expect_error save-500 "fake: cannot export the image" -t app:sq app:1
expect_error save-drop "stream broken after" -t app:sq app:1
expect_error load-error "fake: no space left on device" -t app:sq app:1
expect_error load-drop "docker daemon: loading the squashed image: " -t app:sq app:1
expect_error load-error "fake: no space left on device" -t app:sq docker-archive:"$WORK/sample.tar" --load-image

# json FILE EXPR: evaluate a Python expression over the parsed JSON file `j`.
json() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"; }

# A classic store, squashing the top two layers: the stream carries manifest.json only, the new
# layer under a fixed name, and none of the two kept layers (the daemon holds them).
start ok
"$BIN" -f 2 -t app:sq app:1 2>"$WORK/err" || fail "classic: $(cat "$WORK/err")"
mkdir "$WORK/classic"
tar -C "$WORK/classic" -xf "$WORK/capture.tar"
[ ! -e "$WORK/classic/index.json" ] || fail "classic: index.json sent"
layers=$(json "$WORK/classic/manifest.json" "' '.join(j[0]['Layers'])")
set -- $layers
[ $# -eq 3 ] || fail "classic: expected 3 layers in manifest.json, got: $layers"
[ ! -e "$WORK/classic/$1" ] && [ ! -e "$WORK/classic/$2" ] || fail "classic: kept layers were sent"
[ -f "$WORK/classic/$3" ] || fail "classic: new layer $3 missing"
config="$WORK/classic/$(json "$WORK/classic/manifest.json" "j[0]['Config']")"
[ "sha256:$(sha256sum <"$WORK/classic/$3" | cut -c1-64)" = "$(json "$config" "j['rootfs']['diff_ids'][-1]")" ] ||
  fail "classic: new layer does not match its diff_id"
grep -qx "sha256:\(ab\)*/tag?repo=app&tag=sq" "$WORK/capture.tar.tags" ||
  fail "classic: the image the daemon reported by ID only was not tagged: $(cat "$WORK/capture.tar.tags" 2>&1)"
echo "ok: classic store: new layer streamed, 2 kept layers left out, tagged by ID"

# A classic store that no longer has the kept layers (the source was removed after the save):
# the loader's "no such file" answer makes the archive go again, in full.
start no-layers
"$BIN" -f 2 -t app:sq app:1 2>"$WORK/err" || fail "no-layers: $(cat "$WORK/err")"
mkdir "$WORK/full"
tar -C "$WORK/full" -xf "$WORK/capture.tar"
for l in $(json "$WORK/full/manifest.json" "' '.join(j[0]['Layers'])"); do
  [ -f "$WORK/full/$l" ] || fail "no-layers: the second load still lacks $l"
done
echo "ok: a classic store lacking the kept layers gets them on a second load"

# A containerd store: gzip layer, OCI media types, every layer sent, diff_id of the inflated tar.
start containerd
"$BIN" -f 2 -t app:sq app:1 2>"$WORK/err" || fail "containerd: $(cat "$WORK/err")"
mkdir "$WORK/ctr"
tar -C "$WORK/ctr" -xf "$WORK/capture.tar"
index="$WORK/ctr/index.json"
manifest="$WORK/ctr/blobs/sha256/$(json "$index" "j['manifests'][0]['digest'][7:]")"
types=$(json "$manifest" "' '.join(l['mediaType'] for l in j['layers'])")
[ "${types##* }" = "application/vnd.oci.image.layer.v1.tar+gzip" ] || fail "containerd: media types $types"
top="$WORK/ctr/blobs/sha256/$(json "$manifest" "j['layers'][-1]['digest'][7:]")"
config="$WORK/ctr/blobs/sha256/$(json "$manifest" "j['config']['digest'][7:]")"
[ "$(json "$manifest" "len(j['layers'])")" -eq 3 ] || fail "containerd: expected 3 layers"
for l in $(json "$manifest" "' '.join(l['digest'][7:] for l in j['layers'])"); do
  [ -f "$WORK/ctr/blobs/sha256/$l" ] || fail "containerd: layer $l not sent"
done
gzip -t "$top" || fail "containerd: new layer is not valid gzip"
[ "sha256:$(gzip -dc "$top" | sha256sum | cut -c1-64)" = "$(json "$config" "j['rootfs']['diff_ids'][-1]")" ] ||
  fail "containerd: inflated layer does not match its diff_id"
[ "sha256:$(sha256sum <"$top" | cut -c1-64)" = "$(json "$manifest" "j['layers'][-1]['digest']")" ] ||
  fail "containerd: layer digest wrong"
echo "ok: containerd store: new layer sent gzip-compressed with OCI media types"
[ -z "$(ls -A "$TMPDIR")" ] || fail "temp files left: $(ls -A "$TMPDIR")"

#!/usr/bin/env bash
# The input archive shrinks while it is mapped (truncated by another process) at points spread
# over a run: the squash must stop with one line and exit 1, leave no output or temp file, or,
# when the truncation came after it had read everything, give exactly the normal result. It
# must never write a different image.
set -euo pipefail
BIN="$1"
GEN="$2"
WORK=$(mktemp -d /tmp/dsq-shrink.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export SOURCE_DATE_EPOCH=1700000000 TMPDIR="$WORK/tmp"
mkdir -p "$TMPDIR"
fail() { echo "FAIL: $*" >&2; exit 1; }
"$GEN" many "$WORK/orig.tar" 5 20000 4 10000 >/dev/null
"$BIN" -j 1 --output-path "$WORK/want.tar" "docker-archive:$WORK/orig.tar"
start=$(date +%s%N)
"$BIN" -j 1 --output-path "$WORK/time.tar" "docker-archive:$WORK/orig.tar"
run_ms=$((($(date +%s%N) - start) / 1000000))
size=$(stat -c %s "$WORK/orig.tar")
for tenth in 0 1 2 3 4 5 6 7 8 9; do
  cp "$WORK/orig.tar" "$WORK/in.tar"
  rm -f "$WORK/out.tar"
  "$BIN" -j 1 --output-path "$WORK/out.tar" "docker-archive:$WORK/in.tar" 2>"$WORK/err" &
  pid=$!
  sleep "$(echo "scale=3; $run_ms * ($tenth * 2 + 1) / 20000" | bc)"
  truncate -s $((size / 3)) "$WORK/in.tar"
  rc=0
  wait "$pid" || rc=$?
  [ -z "$(ls -A "$TMPDIR")" ] || fail "temp files left: $(ls -A "$TMPDIR")"
  if [ "$rc" -eq 0 ]; then
    cmp -s "$WORK/want.tar" "$WORK/out.tar" || fail "exit 0 with an output that differs from the normal one"
    echo "ok: truncated after the run had read everything: normal result"
  else
    [ "$rc" -eq 1 ] || fail "exit $rc: $(cat "$WORK/err")"
    [ "$(wc -l <"$WORK/err")" -eq 1 ] || fail "expected one line: $(cat "$WORK/err")"
    [ ! -e "$WORK/out.tar" ] || fail "output left behind"
    [ -z "$(ls -A "$WORK" | grep '^\.')" ] || fail "temp output left in $WORK"
    echo "ok: truncated mid-run: $(cat "$WORK/err")"
  fi
done

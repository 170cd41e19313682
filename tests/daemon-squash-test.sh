#!/usr/bin/env bash
# Squashes images built by a real dockerd (classic builder, from a busybox-static base made
# here: no registry is reachable) by name, through the Engine API, and compares a container
# export and the Config of each result with the original's. Needs DOCKER_HOST (tools/test
# starts a daemon); exits 77 (skipped) without it.
set -euo pipefail
BIN="$1"
[ -n "${DOCKER_HOST:-}" ] || { echo "DOCKER_HOST not set: no daemon to test against"; exit 77; }
WORK=$(mktemp -d /tmp/dsq-daemon.XXXXXX)
cleanup() {
  docker rm -f $(cat "$WORK/containers" 2>/dev/null) >/dev/null 2>&1 || true
  docker rmi -f dsq-d/orig:latest dsq-d/orig:copy dsq-d/sq:all dsq-d/sq:plugin dsq-d/sq:fresh dsq-d/sq:byid \
    dsq-d/sq:cleaned >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# A base image from Debian's busybox-static.
mkdir -p "$WORK/base/bin"
cp /bin/busybox "$WORK/base/bin/busybox"
for t in sh ls rm ln mkdir echo cat chmod touch mv cp; do ln -s busybox "$WORK/base/bin/$t"; done
tar -C "$WORK/base" -c . | docker import - dsq-d/base:latest >/dev/null

cat >"$WORK/Dockerfile" <<'DOCKERFILE'
FROM dsq-d/base:latest
ENV A=1 PATH=/bin
RUN mkdir -p /data/sub /data/gone && echo one > /data/a && echo keep > /data/sub/k && \
    ln /data/a /data/a-link && echo x > /data/gone/x && echo b > "/data/name with spaces"
RUN echo two > /data/a && rm -rf /data/sub /data/gone && mkdir /data/sub && echo new > /data/sub/n && \
    echo caf > /data/café && touch /data/$(printf 'l%.0s' $(seq 1 120))
LABEL purpose=test
RUN rm /data/a && ln -s /nowhere /data/dangling && chmod 600 /data/a-link && rm -rf /data/sub && \
    echo file > /data/sub
RUN mkdir -p /data/todir /data/tolink/deep && echo f > /data/todir/f && echo g > /data/tolink/deep/g && \
    echo orig > /data/shared && ln /data/shared /data/shared-link && echo m > /data/mode
RUN rm -rf /data/tolink && ln -s todir /data/tolink && echo changed > /data/shared && \
    chmod 700 /data/todir && chmod 604 /data/mode && rm /data/todir/f && mkdir /data/todir/f
WORKDIR /data
EXPOSE 8080
CMD ["sh"]
DOCKERFILE
DOCKER_BUILDKIT=0 docker build -q -t dsq-d/orig:latest "$WORK" >/dev/null

source "$(dirname "$0")/docker-tree.sh"
config_of() { docker image inspect -f '{{json .Config}}' "$1"; }
# Layers after squashing the newest N history entries: the kept ones, plus one if the squashed
# entries held any data.
expected_layers() {
  local squashed
  squashed=$(docker history --format '{{.Size}}' dsq-d/orig:latest | head -n "$1" | grep -vc '^0B$' || true)
  echo $((orig_layers - squashed + (squashed > 0 ? 1 : 0)))
}
layers_of() { docker image inspect -f '{{len .RootFS.Layers}}' "$1"; }

tree_of dsq-d/orig:latest "$WORK/tree.orig"
config_of dsq-d/orig:latest >"$WORK/config.orig"
orig_layers=$(layers_of dsq-d/orig:latest)
entries=$(docker history -q dsq-d/orig:latest | wc -l)

check() {  # check IMAGE LABEL EXPECTED_LAYERS
  tree_of "$1" "$WORK/tree.$2"
  diff -u "$WORK/tree.orig" "$WORK/tree.$2" || { echo "FAIL: $1: filesystem differs"; exit 1; }
  diff -u "$WORK/config.orig" <(config_of "$1") || { echo "FAIL: $1: config differs"; exit 1; }
  [ "$(layers_of "$1")" = "$3" ] || { echo "FAIL: $1 has $(layers_of "$1") layers, expected $3"; exit 1; }
  echo "ok: $1 ($3 layers)"
}

"$BIN" -t dsq-d/sq:all dsq-d/orig:latest
check dsq-d/sq:all all 1

# For the end: an --output-path archive, to be loaded into a daemon that never had the source.
"$BIN" -f 4 -t dsq-d/sq:fresh --output-path "$WORK/fresh.tar" --load-image false dsq-d/orig:latest
expected_fresh=$(expected_layers 4)

for n in $(seq 2 "$entries"); do
  "$BIN" -f "$n" -t "dsq-d/sq:top$n" dsq-d/orig:latest
  check "dsq-d/sq:top$n" "top$n" "$(expected_layers "$n")"
  docker rmi -f "dsq-d/sq:top$n" >/dev/null
done

# -f by history ID (the classic builder records one per step): squash the 4 entries above it
id=$(docker history -q --no-trunc dsq-d/orig:latest | sed -n 5p)
"$BIN" -f "$id" -t dsq-d/sq:byid dsq-d/orig:latest
check dsq-d/sq:byid byid "$(expected_layers 4)"

# --output-path with --load-image false: an archive, nothing loaded
"$BIN" -t dsq-d/sq:never --output-path "$WORK/never.tar" --load-image false dsq-d/orig:latest
[ -s "$WORK/never.tar" ] || { echo "FAIL: no archive written"; exit 1; }
if docker image inspect dsq-d/sq:never >/dev/null 2>&1; then echo "FAIL: image loaded"; exit 1; fi
echo "ok: --output-path with --load-image false loads nothing"

# Ctrl-C at some point of the run (spread over the time a whole run takes here: save, squash,
# streamed load): nothing left in the temp dir, and no image unless the run had finished
start=$(date +%s%N)
"$BIN" -t dsq-d/sq:int dsq-d/orig:latest
run_ms=$((($(date +%s%N) - start) / 1000000))
docker rmi -f dsq-d/sq:int >/dev/null
for tenth in 0 1 2 3 4 5 6 7 8 9; do
  delay=$(echo "scale=3; $run_ms * ($tenth * 2 + 1) / 20000" | bc)
  mkdir -p "$WORK/tmp"
  "$BIN" -v -t dsq-d/sq:int --tmp-dir "$WORK/tmp" dsq-d/orig:latest 2>"$WORK/int.err" &
  pid=$!
  sleep "$delay"
  kill -INT "$pid" 2>/dev/null || true
  set +e
  wait "$pid"; rc=$?
  set -e
  [ -z "$(ls -A "$WORK/tmp")" ] || { echo "FAIL: interrupted run left $(ls -A "$WORK/tmp")"; exit 1; }
  sleep 0.5  # a load the daemon would finish on its own has finished by now
  if docker image inspect dsq-d/sq:int >/dev/null 2>&1; then
    [ "$rc" = 0 ] || { echo "FAIL: interrupted run (rc=$rc, after ${delay}s) left an image:"; cat "$WORK/int.err"; exit 1; }
    docker rmi -f dsq-d/sq:int >/dev/null
  else
    [ "$rc" = 130 ] || { echo "FAIL: interrupted run exited $rc"; exit 1; }
  fi
  echo "ok: SIGINT after ${delay}s: exit $rc, nothing left behind"
done

# As a Docker CLI plugin: `docker squash`
mkdir -p "$WORK/docker-config/cli-plugins"
cp "$BIN" "$WORK/docker-config/cli-plugins/docker-squash"
DOCKER_CONFIG="$WORK/docker-config" docker squash -t dsq-d/sq:plugin dsq-d/orig:latest
check dsq-d/sq:plugin plugin 1

# -c removes the source after a successful load (the last check: squashing onto its own tag
# replaces dsq-d/orig:latest), never when the tag is the source
docker tag dsq-d/orig:latest dsq-d/orig:copy
"$BIN" -c -t dsq-d/sq:cleaned dsq-d/orig:copy
if docker image inspect dsq-d/orig:copy >/dev/null 2>&1; then echo "FAIL: -c kept the source"; exit 1; fi
check dsq-d/sq:cleaned cleaned 1
"$BIN" -c -t dsq-d/orig:latest dsq-d/orig:latest 2>"$WORK/err"
grep -q "Tag is the same as image; preventing cleanup" "$WORK/err" || { echo "FAIL: no cleanup warning"; exit 1; }
docker image inspect dsq-d/orig:latest >/dev/null
echo "ok: -c cleanup rules"

# Too little room in --tmp-dir: a clear error before anything is saved
mkdir -p "$WORK/tiny"
mount -t tmpfs -o size=1m tmpfs "$WORK/tiny"
set +e
"$BIN" -t x:y --tmp-dir "$WORK/tiny" dsq-d/orig:latest 2>"$WORK/err"; rc=$?
set -e
umount "$WORK/tiny"
[ "$rc" = 1 ] && grep -q "MiB free (choose another --tmp-dir)" "$WORK/err" ||
  { echo "FAIL: small tmp dir: rc=$rc $(cat "$WORK/err")"; exit 1; }
echo "ok: a full temp filesystem is refused up front"

# A missing image: the daemon's own message, exit 1
set +e
"$BIN" -t x:y dsq-d/does-not-exist:latest 2>"$WORK/err"; rc=$?
set -e
[ "$rc" = 1 ] && grep -q "No such image" "$WORK/err" || { echo "FAIL: missing image: rc=$rc $(cat "$WORK/err")"; exit 1; }
echo "ok: missing image reported"

# Remove every image of this test (the base and the builder's intermediates too, so no layer is
# left; this test runs alone on its daemon), then load the archive.
docker rm -f $(cat "$WORK/containers") >/dev/null 2>&1 || true
: >"$WORK/containers"
docker image prune -af >/dev/null
[ -z "$(docker images -aq 'dsq-d/*')" ] || { echo "FAIL: images left before the fresh load"; exit 1; }
docker load -i "$WORK/fresh.tar" >/dev/null
check dsq-d/sq:fresh fresh "$expected_fresh"

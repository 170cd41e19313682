#!/usr/bin/env bash
# OCI layouts made by independent tools, squashed and loaded into a real dockerd: the daemon's
# own `docker save`, skopeo's oci: and oci-archive: copies (plain, gzip and zstd layers) and a
# hand-made multi-platform index go in; oci-archive and oci outputs (plain, gzip, zstd) come out,
# are read by skopeo inspect and umoci unpack, and are loaded back (skopeo copy to a
# docker-archive for plain and gzip layers; zstd blobs are decompressed here, since skopeo 1.9
# will not convert them). Every loaded result must export the original's filesystem. Needs
# DOCKER_HOST (tools/test starts a daemon); exits 77 (skipped) without it.
set -euo pipefail
BIN="$1"
GEN="$2"
HERE="$(cd "$(dirname "$0")" && pwd)"
[ -n "${DOCKER_HOST:-}" ] || { echo "DOCKER_HOST not set: no daemon to test against"; exit 77; }
WORK=$(mktemp -d /tmp/dsq-ocirt.XXXXXX)
: >"$WORK/images"
cleanup() {
  docker rm -f $(cat "$WORK/containers" 2>/dev/null) >/dev/null 2>&1 || true
  docker rmi -f $(cat "$WORK/images") >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
source "$HERE/docker-tree.sh"

cat >"$WORK/spec" <<'SPEC'
tag dsq-oci/original:latest
layer
dir etc
file etc/a one
file etc/b two
dir usr
dir usr/bin
file usr/bin/tool t mode=0755
hardlink usr/bin/tool-link usr/bin/tool mode=0755
empty ENV%20A%3D1
layer
dir etc
file etc/a three mode=0600 uid=1000 gid=1000
whiteout etc/b
file name%20with%20spaces x
layer
dir usr
opaque usr
file usr/new fresh
symlink dangling /nowhere
empty CMD%20sh
SPEC
"$GEN" spec "$WORK/spec" "$WORK/gen.tar"
docker load -i "$WORK/gen.tar" >/dev/null
echo dsq-oci/original:latest >>"$WORK/images"
tree_of dsq-oci/original:latest "$WORK/tree.original"
docker save -o "$WORK/save.tar" dsq-oci/original:latest

skopeo copy -q docker-archive:"$WORK/save.tar" oci:"$WORK/plain:t"
skopeo copy -q --dest-compress --dest-compress-format gzip docker-archive:"$WORK/save.tar" oci:"$WORK/gz:t"
skopeo copy -q --dest-compress --dest-compress-format zstd docker-archive:"$WORK/save.tar" oci-archive:"$WORK/zst.tar:t"
cp -r "$WORK/gz" "$WORK/multi"
python3 "$HERE/oci-edit.py" "$WORK/multi" nest multi

# same_tree IMAGE LABEL: a container of IMAGE exports the original's filesystem.
same_tree() {
  echo "$1" >>"$WORK/images"
  tree_of "$1" "$WORK/tree.$2"
  diff -u "$WORK/tree.original" "$WORK/tree.$2" || fail "$2: filesystem differs"
}

n=0
for input in "docker-archive:$WORK/save.tar" "oci:$WORK/plain:t" "oci:$WORK/gz" \
  "oci-archive:$WORK/zst.tar:t" "oci:$WORK/multi:multi"; do
  n=$((n + 1))
  "$BIN" -f 3 --platform linux/amd64 -t "dsq-oci/in:$n" --output-path "$WORK/in$n.tar" "$input" || fail "$input"
  docker load -i "$WORK/in$n.tar" >/dev/null
  same_tree "dsq-oci/in:$n" "in$n"
  echo "ok: $input squashes and loads with the original's filesystem"
done

# to_docker_archive LAYOUT OUT: a docker-archive with every layer decompressed here.
to_docker_archive() {
  python3 - "$1" "$2" <<'PY'
import io, json, os, subprocess, sys, tarfile
root, out = sys.argv[1], sys.argv[2]
blob = lambda d: open(os.path.join(root, "blobs/sha256", d.split(":")[1]), "rb").read()
index = json.load(open(os.path.join(root, "index.json")))
manifest = json.loads(blob(index["manifests"][0]["digest"]))
with tarfile.open(out, "w") as t:
    def add(name, data):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    add("config.json", blob(manifest["config"]["digest"]))
    names = []
    for i, layer in enumerate(manifest["layers"]):
        data = blob(layer["digest"])
        if layer["mediaType"].endswith("zstd"):
            data = subprocess.run(["zstd", "-dc"], input=data, capture_output=True, check=True).stdout
        elif layer["mediaType"].endswith("gzip"):
            data = subprocess.run(["gzip", "-dc"], input=data, capture_output=True, check=True).stdout
        names.append("layer%d.tar" % i)
        add(names[-1], data)
    add("manifest.json", json.dumps([{"Config": "config.json", "RepoTags": None, "Layers": names}]).encode())
PY
}

for compression in none gzip zstd; do
  for format in oci-archive oci; do
    out="$WORK/out-$compression-$format"
    "$BIN" -f 3 -t dsq-oci/out:sq --compression "$compression" --output-format "$format" \
      --output-path "$out" "oci:$WORK/gz" || fail "$compression $format"
    ref=$([ "$format" = oci ] && echo "oci:$out:sq" || echo "oci-archive:$out:sq")
    skopeo inspect "$ref" >/dev/null || fail "$compression $format: skopeo inspect"
    layout="$out"
    if [ "$format" = oci-archive ]; then
      layout="$out.d"
      mkdir "$layout"
      tar -C "$layout" -xf "$out"
    fi
    if [ "$compression" != zstd ]; then  # umoci 0.4 reads gzip and plain layers only
      umoci unpack --rootless --image "$layout:sq" "$WORK/bundle-$compression-$format" >/dev/null
      [ "$(cat "$WORK/bundle-$compression-$format/rootfs/etc/a")" = three ] || fail "umoci: content"
      skopeo copy -q "$ref" "docker-archive:$WORK/back.tar:dsq-oci/back:$compression-$format"
    else
      to_docker_archive "$layout" "$WORK/back.tar"
    fi
    loaded=$(docker load -i "$WORK/back.tar" | sed -n 's/^Loaded image: //p; s/^Loaded image ID: //p')
    same_tree "$loaded" "out-$compression-$format"
    rm -f "$WORK/back.tar"
    echo "ok: --output-format $format --compression $compression: skopeo, umoci and docker read it"
  done
done

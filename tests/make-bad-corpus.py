#!/usr/bin/env python3
"""Writes the hostile-input corpus (tests/data/bad/): every case is an image archive and an
expectation, both derived here, so the corpus can be regenerated and checked against git.

  make-bad-corpus.py OUTDIR

For each case NAME it writes NAME.tar and NAME.expect. The archive is a docker-archive whose
top layer (or whose metadata) is damaged, or with `.oci.tar` an oci-archive. The expectation's
first line is one of
  error TEMPLATE    the exact error line; {IN} is the input as the tool names it, {LAYER} the
                    damaged layer's name in that input, {ARG} the image argument, {MISSING}
                    how a missing file is reported (from the archive, or the layout directory)
  ok                the squash succeeds; the lines after it are `path|type|link` entries the
                    squashed layer must hold (type f, d, l, h), or `!path` ones it must not
(stored as JSON, with the input kinds it applies to and any extra command-line arguments).
The damaged layer always sits on a good base layer, so a squash has two layers to merge.
"""
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile

BLOCK = 512


def octal(value, width):
    return (b"%0*o" % (width - 1, value)) + b"\0"


def header(name, size=0, kind=b"0", link=b"", mode=0o644, size_field=None, checksum=None,
           magic=b"ustar\x0000"):
    """One raw tar header: ustar fields, a valid checksum unless one is given."""
    name = name.encode() if isinstance(name, str) else name
    link = link.encode() if isinstance(link, str) else link
    h = bytearray(BLOCK)
    h[0:len(name)] = name[:100]
    h[100:108] = octal(mode, 8)
    h[108:116] = octal(0, 8)
    h[116:124] = octal(0, 8)
    h[124:136] = size_field if size_field is not None else octal(size, 12)
    h[136:148] = octal(0, 12)
    h[156:157] = kind
    h[157:157 + len(link)] = link[:100]
    h[257:265] = magic
    h[148:156] = b" " * 8
    total = sum(h) if checksum is None else checksum
    h[148:156] = b"%06o\0 " % total
    return bytes(h)


def pad(data):
    return data + b"\0" * (-len(data) % BLOCK)


def entry(name, data=b"", **kw):
    kind = kw.pop("kind", b"0")
    return header(name, len(data), kind, **kw) + pad(data)


def directory(name):
    return header(name.rstrip("/") + "/", kind=b"5", mode=0o755)


def symlink(name, target):
    return header(name, kind=b"2", link=target, mode=0o777)


def hardlink(name, target):
    return header(name, kind=b"1", link=target)


def pax(records, kind=b"x"):
    """An extended header holding `records` (raw bytes, lengths included by the caller)."""
    return header("PaxHeaders/x", len(records), kind) + pad(records)


def pax_record(key, value):
    body = b" " + key + b"=" + value + b"\n"
    n = len(body) + 1
    while len(str(n).encode()) + len(body) != n:
        n += 1
    return str(n).encode() + body


END = b"\0" * (2 * BLOCK)


def layer(*parts, end=True):
    return b"".join(parts) + (END if end else b"")


BASE = layer(directory("etc"), entry("etc/os-release", b"NAME=bad-corpus\n"),
             directory("usr"), entry("usr/tool", b"v1\n"))


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tar_member(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def docker_archive(layers, diff_ids=None, manifest=None, config=None, members=None,
                   tail=()):
    """A docker save archive of `layers` (bytes each, maybe compressed): layer paths are
    <hex of the blob>/layer.tar; diff_ids default to the blobs' own digests (right for plain
    tars; callers pass the decompressed digests)."""
    paths = [hashlib.sha256(l).hexdigest() + "/layer.tar" for l in layers]
    if diff_ids is None:
        diff_ids = [sha(l) for l in layers]
    if config is None:
        config = json.dumps({
            "architecture": "amd64", "os": "linux", "config": {},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created_by": "layer %d" % i} for i in range(len(diff_ids))],
        }, separators=(",", ":")).encode()
    config_path = hashlib.sha256(config).hexdigest() + ".json"
    if manifest is None:
        manifest = json.dumps([{"Config": config_path, "RepoTags": ["bad:latest"],
                                "Layers": paths}], separators=(",", ":")).encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        written = set()
        for path, data in zip(paths, layers):
            if path not in written:
                tar_member(tar, path, data)
                written.add(path)
        tar_member(tar, config_path, config)
        for name, data in (members or []):
            tar_member(tar, name, data)
        if manifest is not False:
            tar_member(tar, "manifest.json", manifest)
        for name, data in tail:
            tar_member(tar, name, data)
    return out.getvalue()


def oci_archive(index, blobs, named=()):
    """An oci-archive: oci-layout, index.json (bytes), blobs (bytes, stored by digest) and
    `named` (path, bytes) members."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        tar_member(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        for data in blobs:
            tar_member(tar, "blobs/sha256/" + hashlib.sha256(data).hexdigest(), data)
        for path, data in named:
            tar_member(tar, path, data)
        tar_member(tar, "index.json", index)
    return out.getvalue()


def oci_image(layers, layer_descriptors=None):
    """Config, manifest and index of an OCI image of plain `layers`."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [sha(l) for l in layers]}},
                        separators=(",", ":")).encode()
    descs = layer_descriptors or [
        {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha(l), "size": len(l)}
        for l in layers]
    manifest = json.dumps({"schemaVersion": 2,
                           "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": sha(config), "size": len(config)},
                           "layers": descs}, separators=(",", ":")).encode()
    return config, manifest


def index_of(manifest, kind="application/vnd.oci.image.manifest.v1+json"):
    return json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": kind, "digest": sha(manifest), "size": len(manifest),
         "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}).encode()


def compressed(kind, data):
    if kind == "gzip":
        return gzip.compress(data, mtime=0)
    return subprocess.run(["zstd", "-q", "-c", "-3"], input=data, check=True,
                          stdout=subprocess.PIPE).stdout


CASES = {}


def case(name, expect, archive, args=()):
    """expect: "error MESSAGE", or "ok" then lines of `path|type|link` that the squashed layer
    holds or `!path` that it must not."""
    lines = expect if isinstance(expect, list) else expect.split("\n")
    if lines[0].startswith("error "):
        spec = {"error": lines[0][len("error "):]}
    elif lines[0].startswith("exit 2 "):
        spec = {"error": lines[0][len("exit 2 "):], "exit": 2}
    else:
        spec = {"has": [l.split("|") for l in lines[1:] if not l.startswith("!")],
                "lacks": [l[1:] for l in lines[1:] if l.startswith("!")]}
    if args:
        spec["args"] = list(args)
    if name.endswith(".oci"):
        spec["inputs"] = ["oci", "oci-archive"]
    elif name.split("-")[0] in ("outer", "manifest", "member", "config"):
        spec["inputs"] = ["docker-archive", "stdin", "daemon"]  # damage an OCI layout lacks
    else:
        spec["inputs"] = ["docker-archive", "stdin", "daemon", "oci", "oci-archive"]
    CASES[name] = (spec, archive)


def on_base(top, **kw):
    return docker_archive([BASE, top], **kw)


def layer_error(name, top, message, args=()):
    case(name, "error {LAYER}" + message, on_base(top), args)


def layer_ok(name, top, lines, args=()):
    case(name, ["ok"] + lines, on_base(top), args)


FILE = entry("etc/motd", b"hello\n")
GOOD_TOP = layer(directory("etc"), FILE, entry("usr/tool", b"v2\n"))

# --- Truncated layers (the outer archive stays consistent: the layer blob itself is short).
mid_header = GOOD_TOP[:BLOCK + 100]
case("layer-truncated-mid-header", "error {LAYER}:after etc/@512: truncated archive: a header "
     "runs past the end", on_base(mid_header))
mid_data = layer(directory("etc"), header("etc/motd", 4096), end=False) + b"x" * 1000
case("layer-truncated-mid-data", "error {LAYER}:etc/motd@512: truncated archive: entry data "
     "runs past the end", on_base(mid_data))
mid_padding = layer(directory("etc"), header("etc/motd", 6), end=False) + b"hello\n" + b"\0" * 10
case("layer-truncated-mid-padding", "error {LAYER}:etc/motd@512: truncated archive: the "
     "entry's padding runs past the end", on_base(mid_padding))

# --- Damaged headers.
bad_sum = header("etc/motd", 6, checksum=12345) + pad(b"hello\n")
layer_error("header-bad-checksum", layer(directory("etc"), bad_sum),
            ":after etc/@512: invalid tar header: bad checksum")
negative = header("etc/motd", size_field=b"\xff" * 12) + pad(b"hello\n")
layer_error("size-negative", layer(directory("etc"), negative),
            ":after etc/@512: invalid tar header: negative size")
huge = header("etc/motd", size_field=b"77777777777\0") + pad(b"hello\n")
layer_error("size-huge-octal", layer(directory("etc"), huge),
            ":etc/motd@512: truncated archive: entry data runs past the end")
garbage = header("etc/motd", size_field=b"0000000x12 \0") + pad(b"hello\n")
layer_error("size-octal-garbage", layer(directory("etc"), garbage),
            ":after etc/@512: invalid tar header: size field is not a number")
b256_huge = header("etc/motd", size_field=b"\x80" + b"\0" * 3 + b"\x7f" + b"\xff" * 7) + \
    pad(b"hello\n")
layer_error("size-base256-huge", layer(directory("etc"), b256_huge),
            ":etc/motd@512: truncated archive: entry data runs past the end")
b256_ok = header("etc/motd", size_field=b"\x80" + b"\0" * 10 + b"\x06") + pad(b"hello\n")
layer_ok("size-base256", layer(directory("etc"), b256_ok), ["etc/motd|f|"])

# --- PAX extended headers.
layer_error("pax-bad-length", layer(pax(b"99 path=etc/motd\n"), FILE),
            "@0: invalid tar header: malformed pax record")
layer_error("pax-length-not-digits", layer(pax(b"1x path=etc/motd\n"), FILE),
            "@0: invalid tar header: malformed pax record")
layer_error("pax-missing-newline", layer(pax(b"17 path=etc/motd!"), FILE),
            "@0: invalid tar header: malformed pax record")
layer_error("pax-huge-size", layer(pax(pax_record(b"size", b"99999999999999999")), FILE),
            ":etc/motd@0: truncated archive: entry data runs past the end")
layer_error("pax-huge-path", layer(pax(pax_record(b"path", b"a/" * 40000 + b"f")), FILE),
            ":" + "a/" * 40000 + "f@0: name too long")
layer_error("pax-nul-in-path", layer(pax(pax_record(b"path", b"etc/mo\0td")), FILE),
            "@0: invalid tar header: NUL byte in a pax path")

# --- GNU long names.
long_name = b"etc/" + b"n" * 150


def gnu_long(kind, text):
    return header("././@LongLink", len(text) + 1, kind) + pad(text + b"\0")


layer_error("gnu-longname-chain",
            layer(gnu_long(b"L", long_name), gnu_long(b"L", b"etc/other"), FILE),
            "@1024: invalid tar header: two extension headers of one kind for one entry")
layer_error("gnu-longname-and-pax",
            layer(pax(pax_record(b"path", b"etc/a")), gnu_long(b"L", b"etc/b"), FILE),
            "@1024: invalid tar header: both a pax and a GNU long name for one entry")
layer_error("gnu-longname-dangling", layer(directory("etc"), gnu_long(b"L", long_name)),
            ":after etc/@1536: invalid tar header: extension header without an entry")
layer_ok("gnu-longname", layer(directory("etc"), gnu_long(b"L", long_name), FILE),
         [long_name.decode() + "|f|", "!etc/motd"])

# --- What readers disagree on: Docker (Go's archive/tar) must see the entry the index saw.
layer_error("chain-after-global-header",
            layer(pax(pax_record(b"comment", b"x"), b"g"), pax(pax_record(b"path", b"etc/safe")),
                  gnu_long(b"L", b"etc/evil"), FILE),
            "@2048: invalid tar header: both a pax and a GNU long name for one entry")
layer_error("global-header-inside-chain",
            layer(pax(pax_record(b"path", b"etc/a")), pax(pax_record(b"comment", b"x"), b"g"), FILE),
            "@1024: invalid tar header: a global header inside a chain")
layer_ok("global-header", layer(directory("etc"), pax(pax_record(b"comment", b"x"), b"g"), FILE),
         ["etc/motd|f|"])
layer_error("directory-with-data",
            layer(pax(pax_record(b"size", b"512")), directory("etc"), FILE),
            ":etc/@0: invalid tar header: a link, directory or device with data")
layer_error("symlink-with-data", layer(header("etc/l", 512, b"2", link="x") + pad(FILE[:512])),
            ":etc/l@0: invalid tar header: a link, directory or device with data")
layer_error("file-named-like-directory", layer(entry("etc/", b"x")),
            ":etc/@0: invalid tar header: a regular file named like a directory")
layer_ok("old-directory-as-file-with-slash", layer(header("etc/", kind=b"\0", mode=0o755), FILE),
         ["etc/|d|", "etc/motd|f|"])
# Go and libarchive keep the header's name, Python's tarfile takes the empty one.
layer_error("pax-empty-path", layer(directory("etc"), pax(pax_record(b"path", b"")), FILE),
            ":after etc/@512: invalid tar header: an empty name in an extension header")
layer_error("gnu-empty-long-name", layer(directory("etc"), gnu_long(b"L", b""), FILE),
            ":after etc/@512: invalid tar header: an empty name in an extension header")
gnu_times = bytearray(header("motd", 6, magic=b"ustar  \0"))
gnu_times[345:348] = b"etc"
gnu_times[148:156] = b" " * 8
gnu_times[148:156] = b"%06o\0 " % sum(gnu_times)
layer_error("gnu-header-with-prefix", layer(directory("etc"), bytes(gnu_times) + pad(b"hello\n")),
            ":motd@512: invalid tar header: GNU time fields that do not parse")
layer_error("pax-length-overflow",
            layer(pax(b"18446744073709551716 path=" + b"a" * 73 + b"\n"), FILE),
            "@0: invalid tar header: malformed pax record")
layer_error("pax-larger-than-1mib", layer(pax(pax_record(b"comment", b"c" * (1 << 20))), FILE),
            "@0: invalid tar header: extension header larger than 1 MiB")
layer_error("vendor-entry-type", layer(directory("etc"), header("etc/vol", 0, b"V")),
            ":etc/vol@512: unsupported tar entry type 'V'")

# --- Sparse files (not supported: one clear error).
sparse_gnu = header("etc/sparse", 0, b"S")
layer_error("sparse-gnu", layer(directory("etc"), sparse_gnu),
            ":etc/sparse@512: sparse tar entries are not supported")
sparse_pax = pax(pax_record(b"GNU.sparse.major", b"1") + pax_record(b"GNU.sparse.minor", b"0") +
                 pax_record(b"GNU.sparse.name", b"etc/sparse") +
                 pax_record(b"GNU.sparse.realsize", b"4096"))
layer_error("sparse-pax", layer(sparse_pax, header("etc/GNUSparseFile.0/sparse", 512) +
                                pad(b"1\n0\n512\n")),
            ":etc/sparse@0: sparse tar entries are not supported")

# --- Names.
layer_error("name-dotdot", layer(directory("..")), ":../@0: path escapes the root ('..' component)")
layer_error("name-dotdot-x", layer(entry("../x", b"x")),
            ":../x@0: path escapes the root ('..' component)")
layer_error("name-a-dotdot-dotdot-x", layer(entry("a/../../x", b"x")),
            ":a/../../x@0: path escapes the root ('..' component)")
layer_ok("name-dot", layer(directory("."), FILE), ["./|d|", "etc/motd|f|"])
layer_ok("name-absolute", layer(directory("/abs"), entry("/abs/f", b"x")), ["/abs/|d|", "/abs/f|f|"])
layer_ok("name-newline", layer(directory("etc"), entry("etc/new\nline", b"x")), ["etc/new\nline|f|"])

# --- Links.
layer_error("hardlink-outside", layer(hardlink("etc/passwd", "../../etc/passwd")),
            ":etc/passwd@0: hard link target escapes the root")
layer_error("hardlink-self", layer(directory("etc"), hardlink("etc/self", "etc/self")),
            ":etc/self@512: hard link to itself or to the root")
case("hardlink-cycle", "error {LAYER}:etc/a@512: hard link to 'etc/b', which no earlier entry "
     "provides", on_base(layer(directory("etc"), hardlink("etc/a", "etc/b"),
                               hardlink("etc/b", "etc/a"))))
case("hardlink-later", "error {LAYER}:etc/a@512: hard link to 'etc/b', which no earlier entry "
     "provides", on_base(layer(directory("etc"), hardlink("etc/a", "etc/b"),
                               entry("etc/b", b"b"))))
case("hardlink-directory", "error {LAYER}:etc/a@512: hard link to 'usr', which is a directory",
     on_base(layer(directory("etc"), hardlink("etc/a", "usr"))))
layer_ok("symlink-escaping", layer(directory("etc"), symlink("etc/abs", "/etc/shadow"),
                                   symlink("etc/up", "../../../../root/.ssh"),
                                   symlink("etc/dotdot", "..")),
         ["etc/abs|l|/etc/shadow", "etc/up|l|../../../../root/.ssh", "etc/dotdot|l|.."])
layer_ok("hardlink-absolute", layer(directory("etc"), hardlink("etc/tool", "/usr/tool")),
         ["etc/tool|f|", "usr/tool|h|etc/tool"])  # the first in output order holds the data

# --- Whiteouts.
layer_error("whiteout-dotdot", layer(directory("etc"), entry("etc/.wh...")),
            ":etc/.wh...@512: invalid whiteout name")
layer_error("whiteout-dot", layer(directory("etc"), entry("etc/.wh..")),
            ":etc/.wh..@512: invalid whiteout name")

# --- Duplicated paths: the later one wins, as when a layer is unpacked.
layer_ok("duplicate-paths", layer(directory("etc"), entry("etc/motd", b"first\n"),
                                  entry("etc/motd", b"second!\n")), ["etc/motd|f|"])

# --- Corrupt compressed layers (the diff_id is the decompressed tar's).
for kind in ("gzip", "zstd"):
    blob = compressed(kind, GOOD_TOP)
    ids = [sha(BASE), sha(GOOD_TOP)]
    flipped = bytearray(blob)
    flipped[len(blob) // 2] ^= 0x55
    case(kind + "-corrupt", "error {LAYER}" + {
        "gzip": "@127: corrupt compressed layer: incorrect data check",
        "zstd": "@0: corrupt compressed layer: Data corruption detected"}[kind],
         docker_archive([BASE, bytes(flipped)], diff_ids=ids))
    case(kind + "-truncated", "error {LAYER}@%d: truncated compressed layer (the stream ends "
         "early)" % {"gzip": 65, "zstd": 72}[kind],
         docker_archive([BASE, blob[:len(blob) // 2]], diff_ids=ids))

# --- The outer archive and its metadata (docker-archive inputs only).
good = on_base(GOOD_TOP)
case("outer-truncated", "error {IN}:%s/layer.tar@0: truncated archive: entry data runs past the "
     "end" % hashlib.sha256(BASE).hexdigest(), good[:BLOCK + 1000])
case("outer-empty", "error {IN}: empty file, not an image archive", b"")
case("outer-not-tar", "error {IN}@0: not a tar archive (no valid header at the start)", b"this is not a tar archive\n" * 40)
case("manifest-not-json", "error {IN}:manifest.json: invalid JSON (JSON document ended early in "
     "the middle of an object or array.)",
     on_base(GOOD_TOP, manifest=b"[{\"Config\": "))
case("manifest-empty", "error {IN}:manifest.json: invalid JSON (Empty: no JSON found)", on_base(GOOD_TOP, manifest=b""))
case("manifest-zero-images", "error {IN}:manifest.json: lists no image",
     on_base(GOOD_TOP, manifest=b"[]"))
case("manifest-missing", "error {IN}:manifest.json: missing (not a docker save archive?)",
     on_base(GOOD_TOP, manifest=False))


def manifest_for(layer_paths, config_name):
    return json.dumps([{"Config": config_name, "RepoTags": ["bad:latest"],
                        "Layers": layer_paths}]).encode()


def config_for(diff_ids):
    return json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                       "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()


def with_config(diff_ids, layers=(BASE, GOOD_TOP), paths=None, members=None):
    """A docker-archive of `layers` whose config lists `diff_ids` (and manifest `paths`)."""
    config = config_for(diff_ids)
    names = [hashlib.sha256(l).hexdigest() + "/layer.tar" for l in layers]
    return docker_archive(list(layers), config=config, members=members,
                          manifest=manifest_for(paths if paths is not None else names,
                                                hashlib.sha256(config).hexdigest() + ".json"))


ids = [sha(BASE), sha(GOOD_TOP)]
base_path = hashlib.sha256(BASE).hexdigest() + "/layer.tar"
# An image without layers is valid (FROM scratch, ENV ...): nothing to squash, exit 2.
case("manifest-zero-layers", "exit 2 No layers to squash in {ARG}", with_config([], paths=[]))
case("manifest-missing-blob", "error {IN}:deadbeef/layer.tar: missing from the archive",
     with_config(ids, layers=[BASE], paths=[base_path, "deadbeef/layer.tar"]))
case("manifest-same-layer-twice", "ok\netc/motd|f|",
     with_config([sha(BASE), sha(GOOD_TOP), sha(GOOD_TOP)],
                 paths=[base_path, hashlib.sha256(GOOD_TOP).hexdigest() + "/layer.tar"] * 1 +
                 [hashlib.sha256(GOOD_TOP).hexdigest() + "/layer.tar"]))
# Short member names keep these two small.
case("manifest-thousands-of-layers", "ok\netc/motd|f|",
     with_config([sha(BASE)] + [sha(GOOD_TOP)] * 3000, paths=["b"] + ["t"] * 3000,
                 members=[("b", BASE), ("t", GOOD_TOP)]))
case("manifest-too-many-layers", "error {IN}:manifest.json: lists 40000 layers; at most 32767 "
     "are supported", with_config([sha(BASE)], paths=["b"] * 40000, members=[("b", BASE)]))
case("member-twice", "error {IN}:manifest.json: appears twice in the archive",
     on_base(GOOD_TOP, tail=[("manifest.json", b"[]")]))
case("config-diff-id-disagrees", "error {LAYER}: layer content has digest %s but the config's "
     "diff_id is %s" % (sha(GOOD_TOP), sha(BASE)), with_config([sha(BASE), sha(BASE)]),
     ["--verify"])
case("config-diff-id-count", "error {IN}:%s.json: lists 1 diff_ids but manifest.json lists 2 "
     "layers"
     % hashlib.sha256(config_for([sha(BASE)])).hexdigest(), with_config([sha(BASE)],
     paths=[base_path, hashlib.sha256(GOOD_TOP).hexdigest() + "/layer.tar"]))
short = "sha256:" + "ab" * 31
case("config-digest-wrong-length", "error {IN}:%s.json: rootfs.diff_ids: malformed digest '%s'"
     % (hashlib.sha256(config_for([sha(BASE), short])).hexdigest(), short),
     with_config([sha(BASE), short]))
md5 = "md5:" + "ab" * 16
case("config-digest-wrong-algorithm", "error {IN}:%s.json: rootfs.diff_ids: malformed digest '%s'"
     % (hashlib.sha256(config_for([sha(BASE), md5])).hexdigest(), md5),
     with_config([sha(BASE), md5]))

# --- OCI layouts only.
config, manifest = oci_image([BASE, GOOD_TOP])
case("oci-good.oci", "ok\netc/motd|f|", oci_archive(index_of(manifest),
                                                     [BASE, GOOD_TOP, config, manifest]))
# An index that names itself: stored under the digest it claims, which cannot be its own, so
# the cycle ends at the digest check of its first step.
fake = "sha256:" + "cd" * 32
loop = json.dumps({"schemaVersion": 2, "manifests": [
    {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": fake, "size": 200}]})
loop = loop.encode().ljust(200)
case("oci-index-cycle.oci", "error {IN}:blobs/sha256/%s: content does not match its digest"
     % fake[7:], oci_archive(loop, [BASE, GOOD_TOP, config, manifest],
                             named=[("blobs/sha256/" + fake[7:], loop)]))
case("oci-index-missing.oci", "error {IN}:blobs/sha256/%s: {MISSING}" % fake[7:],
     oci_archive(loop, [BASE, GOOD_TOP, config, manifest]))
for label, digest in (("wrong-length", short), ("wrong-algorithm", md5)):
    bad_descs = [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha(BASE),
                  "size": len(BASE)},
                 {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest,
                  "size": len(GOOD_TOP)}]
    c, m = oci_image([BASE, GOOD_TOP], bad_descs)
    case("oci-digest-" + label + ".oci", "error {IN}:blobs/sha256/%s: layers: unsupported or malformed "
         "digest '%s'" % (sha(m)[7:], digest), oci_archive(index_of(m), [BASE, GOOD_TOP, c, m]))
case("oci-missing-blob.oci", "error {IN}:blobs/sha256/%s: {MISSING}"
     % sha(GOOD_TOP)[7:], oci_archive(index_of(manifest), [BASE, config, manifest]))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name in os.listdir(out):
        if name.endswith((".tar", ".expect")):
            os.remove(os.path.join(out, name))
    for name, (spec, archive) in sorted(CASES.items()):
        with open(os.path.join(out, name + ".tar"), "wb") as f:
            f.write(archive)
        with open(os.path.join(out, name + ".expect"), "w") as f:
            json.dump(spec, f, indent=1)
            f.write("\n")


main()

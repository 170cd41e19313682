#!/usr/bin/env python3
"""Writes a docker-archive whose first layer holds one file of BYTES (pseudo-random 1 MiB
blocks) and a few small files; a second layer overwrites, deletes and adds small files. The
layer is streamed twice (once for its digest, once into the archive), so memory stays small
however large BYTES is.

  gen-biglayer.py OUT BYTES
"""
import hashlib
import io
import json
import random
import sys
import tarfile

OUT, BYTES = sys.argv[1], int(sys.argv[2])
BLOCK = 1 << 20
rng = random.Random(7)
BLOCKS = [rng.randbytes(BLOCK) for _ in range(61)]  # a prime count: no short period


def info(name, size=0, kind=tarfile.REGTYPE, mode=0o644):
    t = tarfile.TarInfo(name)
    t.size, t.type, t.mode, t.mtime = size, kind, mode, 1700000000
    return t


def big_content(write):
    left, i = BYTES, 0
    while left:
        chunk = BLOCKS[i % len(BLOCKS)][:min(BLOCK, left)]
        write(chunk)
        left -= len(chunk)
        i += 1


class Sink:
    """A file-like object that hashes and counts, and optionally writes on."""

    def __init__(self, out=None):
        self.sha, self.size, self.out = hashlib.sha256(), 0, out

    def write(self, data):
        self.sha.update(data)
        self.size += len(data)
        if self.out:
            self.out.write(data)
        return len(data)


def big_layer(sink):
    """The first layer's tar, written to `sink` entry by entry."""
    def header(t):
        sink.write(t.tobuf(tarfile.PAX_FORMAT))  # pax: sizes past 8 GiB

    def small(name, data):
        header(info(name, len(data)))
        sink.write(data + b"\0" * (-len(data) % 512))

    header(info("data/", kind=tarfile.DIRTYPE, mode=0o755))
    header(info("data/blob", BYTES))
    big_content(sink.write)
    sink.write(b"\0" * (-BYTES % 512))
    header(info("etc/", kind=tarfile.DIRTYPE, mode=0o755))
    for i in range(16):
        small("etc/conf%d" % i, b"setting %d\n" % i)
    sink.write(b"\0" * 1024)


def small_layer():
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as t:
        t.addfile(info("etc/", kind=tarfile.DIRTYPE, mode=0o755))
        for name, data in (("etc/conf1", b"changed\n"), ("etc/new", b"new\n")):
            t.addfile(info(name, len(data)), io.BytesIO(data))
        t.addfile(info("etc/.wh.conf2"), io.BytesIO(b""))
    return out.getvalue()


measure = Sink()
big_layer(measure)
top = small_layer()
diff_ids = ["sha256:" + measure.sha.hexdigest(), "sha256:" + hashlib.sha256(top).hexdigest()]
config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                     "rootfs": {"type": "layers", "diff_ids": diff_ids},
                     "history": [{"created_by": "big"}, {"created_by": "small"}]}).encode()
paths = [d[7:] + "/layer.tar" for d in diff_ids]
manifest = json.dumps([{"Config": hashlib.sha256(config).hexdigest() + ".json",
                        "RepoTags": ["scale/biglayer:latest"], "Layers": paths}]).encode()
with open(OUT, "wb") as f:
    f.write(info(paths[0], measure.size).tobuf(tarfile.PAX_FORMAT))
    written = Sink(f)
    big_layer(written)
    assert written.sha.digest() == measure.sha.digest()
    f.write(b"\0" * (-measure.size % 512))
    with tarfile.open(fileobj=f, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for name, data in ((paths[1], top), (hashlib.sha256(config).hexdigest() + ".json", config),
                           ("manifest.json", manifest)):
            t.addfile(info(name, len(data)), io.BytesIO(data))

#!/usr/bin/env python3
"""Runs the tool on every case of the hostile-input corpus (tests/data/bad/, written by
make-bad-corpus.py), through every input kind and every output kind:

  inputs   docker-archive:PATH, `-` (stdin), a daemon (tests/fake-dockerd.py serving the case
           as its `docker save` stream), and for damaged layers also oci:DIR and
           oci-archive:PATH (the archive converted to an OCI layout here)
  outputs  --output-path FILE, --output-path - (stdout), --output-format oci and oci-archive,
           and a load into the (fake) daemon

An error case must end with exactly one line, `docker-squash: MESSAGE`, exit 1, no output file
or directory, nothing on stdout, nothing in the temp directory and no load or tag request at the
daemon. An ok case must exit 0 and its squashed layer must hold (and lack) the listed entries.

  bad-input-test.py BIN CORPUS_DIR [--reduced]

--reduced (sanitized builds, where each run is many times slower) sends every input kind to
the file output and only the docker-archive input to every output kind.
"""
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

BIN, CORPUS = sys.argv[1], sys.argv[2]
REDUCED = "--reduced" in sys.argv[3:]
HERE = os.path.dirname(os.path.abspath(__file__))
WORK = tempfile.mkdtemp(prefix="dsq-bad.")
TMP = os.path.join(WORK, "tmp")
SERVED = os.path.join(WORK, "served.tar")  # what the fake daemon saves
CAPTURE = os.path.join(WORK, "capture.tar")
SOCKET = os.path.join(WORK, "fake.sock")
failures = []


def media_type(blob):
    if blob[:2] == b"\x1f\x8b":
        return "application/vnd.oci.image.layer.v1.tar+gzip"
    if blob[:4] == b"\x28\xb5\x2f\xfd":
        return "application/vnd.oci.image.layer.v1.tar+zstd"
    return "application/vnd.oci.image.layer.v1.tar"


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def to_oci(archive_path, out_dir):
    """The docker-archive's image as an OCI layout; returns the top layer's blob path."""
    with tarfile.open(archive_path) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))[0]
        config = tar.extractfile(manifest["Config"]).read()
        layers = [tar.extractfile(p).read() for p in manifest["Layers"]]
    os.makedirs(os.path.join(out_dir, "blobs", "sha256"))

    def put(data):
        with open(os.path.join(out_dir, "blobs", "sha256", sha(data)[7:]), "wb") as f:
            f.write(data)
        return sha(data)

    descs = [{"mediaType": media_type(l), "digest": put(l), "size": len(l)} for l in layers]
    doc = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                 "digest": put(config), "size": len(config)},
                      "layers": descs}).encode()
    index = {"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": put(doc),
         "size": len(doc), "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}
    with open(os.path.join(out_dir, "index.json"), "w") as f:
        json.dump(index, f)
    with open(os.path.join(out_dir, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    return "blobs/sha256/" + descs[-1]["digest"][7:]


def make_tar(src_dir, path):
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(os.listdir(src_dir)):
            tar.add(os.path.join(src_dir, name), name)


def docker_top_layer(archive_path):
    with tarfile.open(archive_path) as tar:
        return json.load(tar.extractfile("manifest.json"))[0]["Layers"][-1]


def inputs_of(case, archive, wanted):
    """(label, image argument, how the tool names the input, the damaged layer's name, stdin)
    for each input kind in `wanted`."""
    kinds = []
    if "docker-archive" not in wanted:
        oci_dir = os.path.join(WORK, "in", case + ".dir")
        with tarfile.open(archive) as tar:
            tar.extractall(oci_dir)
        kinds.append(("oci-archive", "oci-archive:" + archive, archive, None, None))
        kinds.append(("oci", "oci:" + oci_dir, oci_dir, None, None))
        return kinds
    try:
        layer = docker_top_layer(archive)
    except (tarfile.TarError, KeyError, ValueError, IndexError):
        layer = None  # the metadata itself is the damage
    kinds.append(("docker-archive", "docker-archive:" + archive, archive,
                  layer and archive + ":" + layer, None))
    kinds.append(("stdin", "-", "-", layer and "-:" + layer, archive))
    kinds.append(("daemon", "bad:latest", "bad:latest", layer and "bad:latest:" + layer, None))
    if "oci" in wanted:
        oci_dir = os.path.join(WORK, "in", case + ".dir")
        blob = to_oci(archive, oci_dir)
        oci_tar = os.path.join(WORK, "in", case + ".oci.tar")
        make_tar(oci_dir, oci_tar)
        kinds.append(("oci", "oci:" + oci_dir, oci_dir, oci_dir + ":" + blob, None))
        kinds.append(("oci-archive", "oci-archive:" + oci_tar, oci_tar, oci_tar + ":" + blob,
                      None))
    return kinds


OUTPUTS = [
    ("file", ["--output-path", "{OUT}/out.tar"]),
    ("stdout", ["--output-path", "-"]),
    ("oci", ["--output-format", "oci", "--output-path", "{OUT}/out.oci"]),
    ("oci-archive", ["--output-format", "oci-archive", "--output-path", "{OUT}/out.oci.tar"]),
    ("load", ["--load-image", "true"]),
]


def squashed_entries(kind, out_dir, stdout):
    """{path: (type, link)} of the squashed (top) layer of an output."""
    if kind == "stdout":
        data = stdout
    elif kind == "file":
        data = open(os.path.join(out_dir, "out.tar"), "rb").read()
    else:
        return None
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        top = json.load(tar.extractfile("manifest.json"))[0]["Layers"][-1]
        layer = tar.extractfile(top).read()
    out = {}
    with tarfile.open(fileobj=io.BytesIO(layer)) as t:
        for m in t.getmembers():
            name = m.name + ("/" if m.isdir() else "")
            kind_of = "d" if m.isdir() else "l" if m.issym() else "h" if m.islnk() else "f"
            out[name] = (kind_of, m.linkname)
    return out


def check(label, spec, expect_error, rc, out, err, out_dir, output):
    problems = []
    lines = err.decode(errors="replace").splitlines()
    if expect_error is not None:
        if rc != spec.get("exit", 1):
            problems.append("exit %d, expected %d" % (rc, spec.get("exit", 1)))
        if lines != ["docker-squash: " + expect_error]:
            problems.append("stderr %r, expected %r" % (lines, "docker-squash: " + expect_error))
        if out:
            problems.append("%d bytes on stdout" % len(out))
        if os.listdir(out_dir):
            problems.append("left in the output directory: %s" % os.listdir(out_dir))
        if os.path.exists(CAPTURE) or os.path.exists(CAPTURE + ".tags"):
            problems.append("the daemon was sent a load or a tag")
    else:
        if rc != 0:
            problems.append("exit %d: %s" % (rc, lines))
        else:
            entries = squashed_entries(output, out_dir, out)
            for path, kind, link in ([] if entries is None else spec["has"]):
                got = entries.get(path)
                if got is None or got[0] != kind or (link and got[1] != link):
                    problems.append("squashed layer has %r as %r, expected %s %s" %
                                    (path, got, kind, link))
            for path in ([] if entries is None else spec["lacks"]):
                if path in entries:
                    problems.append("squashed layer holds %r" % path)
    if os.listdir(TMP):
        problems.append("left in the temp directory: %s" % os.listdir(TMP))
    if problems:
        failures.append(label + ": " + "; ".join(problems))


def reset(path):
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)


def check_corpus_is_current():
    """The checked-in corpus is what make-bad-corpus.py writes (compressed cases aside: their
    bytes depend on the compressor's version)."""
    fresh = os.path.join(WORK, "fresh")
    subprocess.run([sys.executable, os.path.join(HERE, "make-bad-corpus.py"), fresh], check=True)
    names = sorted(set(os.listdir(fresh)) | set(os.listdir(CORPUS)))
    for name in names:
        if name.startswith(("gzip-", "zstd-")):
            continue
        a, b = os.path.join(fresh, name), os.path.join(CORPUS, name)
        if not (os.path.exists(a) and os.path.exists(b)) or open(a, "rb").read() != open(b, "rb").read():
            failures.append("%s: the checked-in corpus differs from make-bad-corpus.py's "
                            "(run tests/make-bad-corpus.py tests/data/bad)" % name)


def main():
    os.makedirs(TMP)
    check_corpus_is_current()
    env = dict(os.environ, TMPDIR=TMP, DOCKER_HOST="unix://" + SOCKET)
    open(SERVED, "wb").close()
    daemon = subprocess.Popen([sys.executable, os.path.join(HERE, "fake-dockerd.py"), SOCKET,
                               SERVED, "ok", CAPTURE])
    try:
        for _ in range(100):
            if os.path.exists(SOCKET):
                break
            time.sleep(0.05)
        cases = sorted(n[:-len(".expect")] for n in os.listdir(CORPUS) if n.endswith(".expect"))
        runs = 0
        for case in cases:
            spec = json.load(open(os.path.join(CORPUS, case + ".expect")))
            archive = os.path.join(CORPUS, case + ".tar")
            shutil.copyfile(archive, SERVED)
            for in_label, image, in_name, layer_name, stdin in inputs_of(case, archive, spec["inputs"]):
                expect_error = spec.get("error")
                if expect_error is not None:
                    missing = "missing from the " + ("layout" if in_label == "oci" else "archive")
                    expect_error = expect_error.replace("{IN}", in_name).replace(
                        "{ARG}", image).replace("{MISSING}", missing)
                    if "{LAYER}" in expect_error:
                        expect_error = expect_error.replace("{LAYER}", layer_name)
                for out_label, out_args in OUTPUTS:
                    if REDUCED and in_label != "docker-archive" and out_label != "file":
                        continue
                    out_dir = os.path.join(WORK, "out")
                    reset(out_dir)
                    for f in (CAPTURE, CAPTURE + ".tags"):
                        if os.path.exists(f):
                            os.unlink(f)
                    args = [a.replace("{OUT}", out_dir) for a in out_args]
                    cmd = [BIN, "-t", "bad:squashed"] + spec.get("args", []) + args + [image]
                    with open(stdin or os.devnull, "rb") as source:
                        p = subprocess.run(cmd, stdin=source, capture_output=True, env=env,
                                           timeout=120)
                    runs += 1
                    check("%s [%s -> %s]" % (case, in_label, out_label), spec, expect_error,
                          p.returncode, p.stdout, p.stderr, out_dir, out_label)
        print("%d cases, %d runs, %d failures" % (len(cases), runs, len(failures)))
    finally:
        daemon.kill()
        daemon.wait()
        shutil.rmtree(WORK, ignore_errors=True)
    for f in failures:
        print("FAIL: " + f)
    sys.exit(1 if failures else 0)


main()

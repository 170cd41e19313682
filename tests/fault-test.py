#!/usr/bin/env python3
"""Faults at every phase of a squash, against tests/fake-dockerd.py:

* SIGINT and SIGTERM during save, index, resolve, plan, write and load. The in-process phases
  are hit by sending the signal as soon as `-v` reports the pass before them; save and load by
  sending it while the fake daemon holds the stream paused halfway. Each run must die with
  130 (SIGINT) or 143 (SIGTERM), name no other error, leave nothing in the temp directory, no
  output file, and send the daemon no tag.
* A full disk (a 1 MiB tmpfs as --tmp-dir or as the output directory) for the save spool, the
  standard-input spool, the decompression spool (index), the output file and oci directory, the
  compressed layer spool for standard output, and the gzip spool of a load into a containerd
  store, plus the up-front refusal of a daemon image larger than --tmp-dir. Each must end with
  one line naming the full filesystem's path and "No space left on device" (or the refusal),
  exit 1, and nothing left behind.

  fault-test.py BIN GEN_IMAGE          (the full-disk half needs root to mount tmpfs; skipped
                                        otherwise)
"""
import os
import signal
import subprocess
import sys
import tempfile
import time

BIN, GEN = sys.argv[1], sys.argv[2]
HERE = os.path.dirname(os.path.abspath(__file__))
WORK = tempfile.mkdtemp(prefix="dsq-fault.")
TMP = os.path.join(WORK, "tmp")
SOCKET = os.path.join(WORK, "fake.sock")
CAPTURE = os.path.join(WORK, "capture.tar")
failures = []
daemon = None


def start_daemon(archive, mode):
    global daemon
    stop_daemon()
    for f in (SOCKET, CAPTURE + ".tags", CAPTURE + ".paused"):
        if os.path.exists(f):
            os.unlink(f)
    daemon = subprocess.Popen([sys.executable, os.path.join(HERE, "fake-dockerd.py"), SOCKET,
                               archive, mode, CAPTURE])
    for _ in range(100):
        if os.path.exists(SOCKET):
            return
        time.sleep(0.05)
    sys.exit("fake daemon did not start")


def stop_daemon():
    global daemon
    if daemon is not None:
        daemon.kill()
        daemon.wait()
        daemon = None


def env():
    return dict(os.environ, TMPDIR=TMP, DOCKER_HOST="unix://" + SOCKET)


def leftovers(*dirs):
    return [os.path.join(d, n) for d in dirs for n in os.listdir(d)]


def interrupt(label, args, sig, trigger, output=None):
    """Runs the tool, sends `sig` when trigger(stderr line) says so (or when the fake daemon
    pauses, for trigger "paused"), and checks what is left."""
    p = subprocess.Popen([BIN, "-v"] + args, env=env(), stderr=subprocess.PIPE,
                         stdout=subprocess.DEVNULL, text=True)
    lines = []
    if trigger == "paused":
        while not os.path.exists(CAPTURE + ".paused") and p.poll() is None:
            time.sleep(0.01)
        p.send_signal(sig)
    else:
        for line in p.stderr:
            lines.append(line.rstrip("\n"))
            if line.split(" ", 1)[0] == trigger:
                p.send_signal(sig)
                break
    rest = p.stderr.read().splitlines()
    rc = p.wait()
    passes = [l.split(" ", 1)[0] for l in lines + rest if not l.startswith(" ")]
    want = 128 + sig
    problems = []
    if rc != want:
        problems.append("exit %d, expected %d: %s" % (rc, want, rest))
    errors = [l for l in rest if l.startswith("docker-squash: ") and "interrupted" not in l]
    if errors:
        problems.append("error lines: %s" % errors)
    if leftovers(TMP):
        problems.append("left behind: %s" % leftovers(TMP))
    if output and os.path.exists(output):
        problems.append("partial output %s" % output)
    if os.path.exists(CAPTURE + ".tags"):
        problems.append("the daemon was sent a tag")
    name = "%s %s (passes done: %s)" % (signal.Signals(sig).name, label, " ".join(passes))
    if problems:
        failures.append(name + ": " + "; ".join(problems))
    else:
        print("ok: " + name + ", exit %d" % rc)


def mount_small():
    small = os.path.join(WORK, "small")
    os.makedirs(small, exist_ok=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", small],
                      stderr=subprocess.DEVNULL).returncode != 0:
        return None
    return small


def full_disk(label, args, small, stdin=None, expect_text="No space left on device"):
    # Standard input through a pipe: a regular file would be mapped, not spooled.
    data = open(stdin, "rb").read() if stdin else b""
    p = subprocess.run([BIN] + args, env=env(), input=data, capture_output=True)
    lines = p.stderr.decode(errors="replace").splitlines()
    problems = []
    if p.returncode != 1:
        problems.append("exit %d" % p.returncode)
    if len(lines) != 1 or small not in lines[0] or expect_text not in lines[0]:
        problems.append("expected one line naming %s and '%s': %s" % (small, expect_text, lines))
    if leftovers(TMP, small):
        problems.append("left behind: %s" % leftovers(TMP, small))
    if os.path.exists(CAPTURE + ".tags"):
        problems.append("the daemon was sent a tag")
    if problems:
        failures.append("full disk, %s: %s" % (label, "; ".join(problems)))
    else:
        print("ok: full disk, %s: %s" % (label, lines[0]))


def main():
    os.makedirs(TMP)
    big = os.path.join(WORK, "big.tar")  # ~600k entries: every pass takes a measurable time
    subprocess.run([GEN, "many", big, "3", "150000", "4", "300"], check=True,
                   stdout=subprocess.DEVNULL)
    out = os.path.join(WORK, "out.tar")
    for sig in (signal.SIGINT, signal.SIGTERM):
        start_daemon(big, "slow-save")
        interrupt("during save", ["-t", "app:sq", "app:1"], sig, "paused")
        for trigger, phase in (("select", "index"), ("index", "resolve"), ("resolve", "plan"),
                               ("plan", "write")):
            interrupt("during " + phase, ["--output-path", out, "docker-archive:" + big], sig,
                      trigger, out)
        start_daemon(big, "slow-load")
        interrupt("during load", ["-t", "app:sq", "app:1"], sig, "paused")
    stop_daemon()

    small = mount_small() if os.geteuid() == 0 else None
    if small is None:
        print("full-disk cases skipped: mounting a tmpfs needs root")
    else:
        try:
            plain = os.path.join(WORK, "plain.tar")
            gzipped = os.path.join(WORK, "gzip.tar")
            subprocess.run([GEN, "many", plain, "5", "2000", "3", "2000"], check=True,
                           stdout=subprocess.DEVNULL)
            subprocess.run([GEN, "many", gzipped, "5", "2000", "3", "2000", "gzip"], check=True,
                           stdout=subprocess.DEVNULL)
            tmp_small = ["--tmp-dir", small]
            start_daemon(plain, "undersized")
            full_disk("save spool", tmp_small + ["-t", "app:sq", "app:1"], small)
            full_disk("standard input spool", tmp_small + ["--output-path", out, "-"], small,
                      stdin=plain)
            full_disk("decompression spool (index)",
                      tmp_small + ["--output-path", out, "docker-archive:" + gzipped], small)
            full_disk("output file", ["--output-path", os.path.join(small, "out.tar"),
                                      "docker-archive:" + plain], small)
            full_disk("oci output directory", ["--output-format", "oci", "--output-path",
                                               os.path.join(small, "out.oci"),
                                               "docker-archive:" + plain], small)
            full_disk("compressed layer spool for standard output",
                      tmp_small + ["--compression", "gzip", "--output-path", "-",
                                   "docker-archive:" + plain], small)
            start_daemon(plain, "ok")
            full_disk("up-front refusal (daemon image larger than --tmp-dir)",
                      tmp_small + ["-t", "app:sq", "app:1"], small, expect_text="needs about")
            start_daemon(plain, "containerd")
            full_disk("gzip spool of a load into a containerd store",
                      tmp_small + ["-t", "app:sq", "--load-image", "true",
                                   "docker-archive:" + plain], small)
            stop_daemon()
        finally:
            subprocess.run(["umount", small])
    stop_daemon()
    subprocess.run(["rm", "-rf", WORK])
    for f in failures:
        print("FAIL: " + f)
    sys.exit(1 if failures else 0)


main()

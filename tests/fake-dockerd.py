#!/usr/bin/env python3
"""A scripted Docker Engine API on a Unix socket, for what a real dockerd will not do on demand:
fail inside a save stream, answer 500, drop the connection, or report the containerd image store.

  fake-dockerd.py SOCKET ARCHIVE MODE CAPTURE

ARCHIVE is served as the `docker save` stream of every image name. MODE:
  ok               plain classic-store daemon
  containerd       /info reports the containerd snapshotter image store
  save-error       the save stream stops halfway with a JSON error message (HTTP 200 already sent)
  save-drop        the connection closes halfway through the save stream
  save-500         the save answers HTTP 500 with a JSON message
  load-error       the load answers HTTP 200 with an errorDetail message
  load-drop        the connection closes after the load has sent 8 KiB
  no-layers        a classic store without any layer: a load that leaves out a layer fails as
                   Docker's does ("open .../<layer path>: no such file or directory")
  slow-save        the save stream pauses for 5 s halfway (CAPTURE.paused exists meanwhile)
  slow-load        the load pauses for 5 s after its first 8 KiB (CAPTURE.paused meanwhile)
  undersized       the image reports a size of 4 KiB (so a spool that is too small is found
                   only while saving)
The body of every load request is written to CAPTURE (deleted first), tag requests are appended
to CAPTURE.tags. Loads are answered "Loaded image ID: ..." (no name applied).
"""
import http.server
import json
import os
import socketserver
import sys
import tarfile
import time

SOCKET, ARCHIVE, MODE, CAPTURE = sys.argv[1:5]
IMAGE_ID = "sha256:" + "ab" * 32


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, code, body, content_type="application/json"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Api-Version", "1.43")
        self.end_headers()
        self.wfile.write(data)

    def path_only(self):
        path = self.path.split("?")[0]
        if path.startswith("/v1."):
            path = path[path.index("/", 1):]
        return path

    def do_GET(self):
        path = self.path_only()
        if path == "/_ping":
            return self.reply(200, "OK", "text/plain")
        if path == "/version":
            return self.reply(200, json.dumps({"Version": "0.0.0-fake", "ApiVersion": "1.43"}))
        if path == "/info":
            status = [["driver-type", "io.containerd.snapshotter.v1"]] if MODE == "containerd" else []
            return self.reply(200, json.dumps({"Driver": "fake", "DriverStatus": status}))
        if path.endswith("/json"):
            size = 4096 if MODE == "undersized" else os.path.getsize(ARCHIVE)
            return self.reply(200, json.dumps({"Id": IMAGE_ID, "Size": size}))
        if path.endswith("/history"):
            return self.reply(200, json.dumps([{"Id": "<missing>"}]))
        if path.endswith("/get"):
            return self.save()
        self.reply(404, json.dumps({"message": "no such endpoint " + path}))

    def save(self):
        if MODE == "save-500":
            return self.reply(500, json.dumps({"message": "fake: cannot export the image"}))
        data = open(ARCHIVE, "rb").read()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-tar")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        half = len(data) // 2 // 512 * 512
        body = data
        if MODE in ("save-error", "save-drop", "slow-save"):
            body = data[:half]
        self.chunk(body)
        if MODE == "slow-save":
            self.pause()
            self.chunk(data[half:])
        if MODE == "save-drop":
            self.wfile.flush()
            self.connection.shutdown(2)
            self.close_connection = True
            return
        if MODE == "save-error":
            self.chunk(json.dumps({"errorDetail": {"message": "fake: layer vanished during export"},
                                   "error": "fake: layer vanished during export"}).encode() + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")

    def chunk(self, data):
        self.wfile.write(b"%x\r\n" % len(data) + data + b"\r\n")

    def do_POST(self):
        path = self.path_only()
        if path == "/images/load":
            return self.load()
        if path.endswith("/tag"):
            with open(CAPTURE + ".tags", "a") as tags:
                tags.write(self.path.split("/images/", 1)[1] + "\n")
            return self.reply(201, "")
        self.reply(404, json.dumps({"message": "no such endpoint " + path}))

    def do_DELETE(self):
        self.reply(200, "[]")

    def pause(self):
        self.wfile.flush()
        open(CAPTURE + ".paused", "w").close()
        time.sleep(5)
        os.unlink(CAPTURE + ".paused")

    def load(self):
        received = 0
        paused = False
        with open(CAPTURE, "wb") as out:
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                out.write(self.rfile.read(size))
                self.rfile.readline()
                received += size
                if MODE == "load-drop" and received >= 8192:
                    self.connection.shutdown(2)
                    self.close_connection = True
                    return
                if MODE == "slow-load" and received >= 8192 and not paused:
                    paused = True
                    self.pause()
        missing = self.missing_layer() if MODE == "no-layers" else None
        if missing:
            msg = {"errorDetail": {"message": "open /fake/tmp/docker-import-1/" + missing +
                                   ": no such file or directory"}}
        elif MODE == "load-error":
            msg = {"errorDetail": {"message": "fake: no space left on device"},
                   "error": "fake: no space left on device"}
        else:
            msg = {"stream": "Loaded image ID: " + IMAGE_ID + "\n"}
        self.reply(200, json.dumps(msg) + "\r\n")


    def missing_layer(self):
        """As a classic store that holds no layer: the first layer listed but not sent."""
        with tarfile.open(CAPTURE) as archive:
            names = set(archive.getnames())
            manifest = json.load(archive.extractfile("manifest.json"))
        return next((l for l in manifest[0]["Layers"] if l not in names), None)


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that gives up mid-answer is part of the script

    def get_request(self):
        request, _ = super().get_request()
        return request, ("fake", 0)  # BaseHTTPRequestHandler wants a (host, port) address


if os.path.exists(SOCKET):
    os.unlink(SOCKET)
for stale in (CAPTURE, CAPTURE + ".tags"):
    if os.path.exists(stale):
        os.unlink(stale)
Server(SOCKET, Handler).serve_forever()

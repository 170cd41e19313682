#!/usr/bin/env python3
"""Edits an OCI image layout directory for the tests: builds multi-platform and deeply nested
indexes, and damages layers either consistently (descriptors rewritten to match, so only the
layer's own content is wrong) or not.

  oci-edit.py DIR nest REF            index.json -> an index with an attestation, a linux/arm64
                                      manifest whose blobs are absent, and the real manifest as
                                      linux/amd64; named REF
  oci-edit.py DIR deep N              index.json -> N nested indexes -> the manifest
  oci-edit.py DIR truncate LAYER N    keep the first N bytes of layer LAYER (descriptors follow)
  oci-edit.py DIR media-type LAYER T  give layer LAYER the media type T (descriptors follow)
  oci-edit.py DIR flip LAYER          flip a byte in the middle of layer LAYER's blob, in place
  oci-edit.py DIR drop LAYER          delete layer LAYER's blob
  oci-edit.py DIR config-byte         change a byte of the config, in place
"""
import hashlib
import json
import os
import sys

root, command, args = sys.argv[1], sys.argv[2], sys.argv[3:]


def path_of(digest):
    return os.path.join(root, "blobs", "sha256", digest.split(":", 1)[1])


def put(data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with open(path_of(digest), "wb") as f:
        f.write(data)
    return {"digest": digest, "size": len(data)}


def load_index():
    with open(os.path.join(root, "index.json")) as f:
        return json.load(f)


def save_index(index):
    with open(os.path.join(root, "index.json"), "w") as f:
        json.dump(index, f)


index = load_index()
top = index["manifests"][0]
with open(path_of(top["digest"]), "rb") as f:
    manifest = json.load(f)


def save_manifest():
    desc = put(json.dumps(manifest).encode())
    top.update(desc)
    save_index(index)


if command == "nest":
    real = dict(top, platform={"os": "linux", "architecture": "amd64"})
    real.pop("annotations", None)
    arm = {"mediaType": "application/vnd.oci.image.manifest.v1+json",
           "digest": "sha256:" + "1" * 64, "size": 500,
           "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}}
    attestation = {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                   "digest": "sha256:" + "2" * 64, "size": 300,
                   "platform": {"os": "unknown", "architecture": "unknown"},
                   "annotations": {"vnd.docker.reference.type": "attestation-manifest"}}
    nested = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
              "manifests": [attestation, arm, real]}
    desc = put(json.dumps(nested).encode())
    index["manifests"] = [{"mediaType": "application/vnd.oci.image.index.v1+json", **desc,
                           "annotations": {"org.opencontainers.image.ref.name": args[0]}}]
    save_index(index)
elif command == "deep":
    desc = dict(top)
    for _ in range(int(args[0])):
        nested = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                  "manifests": [desc]}
        desc = {"mediaType": "application/vnd.oci.image.index.v1+json",
                **put(json.dumps(nested).encode())}
    index["manifests"] = [desc]
    save_index(index)
elif command == "config-byte":
    with open(path_of(manifest["config"]["digest"]), "r+b") as f:
        data = f.read()
        f.seek(len(data) // 2)
        f.write(bytes([data[len(data) // 2] ^ 1]))
else:
    layer = manifest["layers"][int(args[0])]
    blob = path_of(layer["digest"])
    if command == "truncate":
        with open(blob, "rb") as f:
            data = f.read()[: int(args[1])]
        layer.update(put(data))
        save_manifest()
    elif command == "media-type":
        layer["mediaType"] = args[1]
        save_manifest()
    elif command == "flip":
        with open(blob, "r+b") as f:
            data = f.read()
            f.seek(len(data) // 2)
            f.write(bytes([data[len(data) // 2] ^ 0x55]))
    elif command == "drop":
        os.unlink(blob)
    else:
        sys.exit("unknown command " + command)

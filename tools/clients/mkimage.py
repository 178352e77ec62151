#!/usr/bin/env python3
"""Build a single-layer image archive from a root filesystem directory, with no registry and no tools:
an OCI image layout (index.json names the image for containerd and podman) that is also a `docker save`
archive (manifest.json with RepoTags, for docker load).

    mkimage.py ROOTFS NAME OUT.tar [--cmd ARG]... [--entrypoint ARG]... [--file PATH=TEXT]...

NAME is fully qualified (registry.local/hull/busybox:1) so that every engine stores it under the same name.
"""
import argparse
import hashlib
import io
import json
import os
import tarfile


def layer_bytes(rootfs, extra_files):
    """The rootfs as an uncompressed tar with fixed timestamps and ownership kept as on disk, plus `extra_files`
    ({path: text}, directories made as needed)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, text in extra_files.items():
            parts = path.strip("/").split("/")
            for depth in range(1, len(parts)):
                directory = "/".join(parts[:depth])
                if not os.path.exists(os.path.join(rootfs, directory)):
                    info = tarfile.TarInfo(directory)
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
            add_file(tar, "/".join(parts), text.encode())
        for top, dirs, files in os.walk(rootfs):
            dirs.sort()
            for name in sorted(dirs) + sorted(files):
                path = os.path.join(top, name)
                info = tar.gettarinfo(path, arcname=os.path.relpath(path, rootfs))
                info.mtime = 0
                info.uname = info.gname = ""
                if info.isreg():
                    with open(path, "rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)
    return out.getvalue()


def blob(tar, data):
    digest = hashlib.sha256(data).hexdigest()
    info = tarfile.TarInfo(f"blobs/sha256/{digest}")
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))
    return f"sha256:{digest}", len(data)


def add_file(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("rootfs")
    parser.add_argument("name")
    parser.add_argument("out")
    parser.add_argument("--cmd", action="append", default=[])
    parser.add_argument("--entrypoint", action="append", default=[])
    parser.add_argument("--file", action="append", default=[], help="PATH=TEXT: a file only the image has")
    args = parser.parse_args()

    layer = layer_bytes(args.rootfs, dict(f.split("=", 1) for f in args.file))
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": args.cmd or ["sh"],
            "WorkingDir": "/",
        },
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]},
        "history": [{"created_by": "tools/clients/mkimage.py"}],
    }
    if args.entrypoint:
        config["config"]["Entrypoint"] = args.entrypoint
    tmp = args.out + ".tmp"
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as tar:
        layer_digest, layer_size = blob(tar, layer)
        config_digest, config_size = blob(tar, json.dumps(config).encode())
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_digest, "size": config_size},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": layer_digest, "size": layer_size}],
        }
        manifest_digest, manifest_size = blob(tar, json.dumps(manifest).encode())
        index = {
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": manifest_size,
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {"io.containerd.image.name": args.name,
                                "org.opencontainers.image.ref.name": args.name},
            }],
        }
        add_file(tar, "oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        add_file(tar, "index.json", json.dumps(index).encode())
        docker = [{"Config": f"blobs/sha256/{config_digest[7:]}", "RepoTags": [args.name],
                   "Layers": [f"blobs/sha256/{layer_digest[7:]}"]}]
        add_file(tar, "manifest.json", json.dumps(docker).encode())
    os.replace(tmp, args.out)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Checks a multi-arch shim image saved as an OCI archive.

    oci_image.py ARCHIVE DIR NAME...

ARCHIVE holds exactly one top-level entry, an OCI image index (manifest
list) whose manifests are one per NAME (shim-linux-amd64 -> linux/amd64,
shim-linux-arm-v7 -> linux/arm/v7). Each image's config names that
architecture and the entrypoint ["/shim", "--"]; its one layer holds /shim
and nothing else, with the bytes of DIR/NAME. Prints one line per platform;
exits 1 with the reason otherwise. Used by scripts/release and
scripts/test-packaging.
"""
import hashlib
import io
import json
import sys
import tarfile


def main(path, bindir, names):
    t = tarfile.open(path)

    def blob(digest):
        algo, hexd = digest.split(":", 1)
        return t.extractfile(f"blobs/{algo}/{hexd}").read()

    index = json.loads(t.extractfile("index.json").read())
    tops = index["manifests"]
    if len(tops) != 1:
        sys.exit(f"{path}: {len(tops)} top-level entries, expected one manifest list")
    top = tops[0]
    lst = json.loads(blob(top["digest"]))
    media = lst.get("mediaType", top.get("mediaType"))
    if media != "application/vnd.oci.image.index.v1+json":
        sys.exit(f"{path}: the entry is {media}, not an OCI image index")
    want = {"linux/" + n[len("shim-linux-"):].replace("-", "/"): n for n in names}
    got = {}
    for m in lst["manifests"]:
        p = m["platform"]
        plat = "/".join(x for x in (p["os"], p["architecture"], p.get("variant")) if x)
        if plat not in want:
            sys.exit(f"{path}: unexpected platform {plat}")
        man = json.loads(blob(m["digest"]))
        cfg = json.loads(blob(man["config"]["digest"]))
        if cfg["architecture"] != p["architecture"] or cfg.get("variant") != p.get("variant"):
            sys.exit(f"{plat}: config says {cfg['architecture']}/{cfg.get('variant')}")
        ep = cfg.get("config", {}).get("Entrypoint")
        if ep != ["/shim", "--"]:
            sys.exit(f"{plat}: entrypoint {ep}")
        if len(man["layers"]) != 1:
            sys.exit(f"{plat}: {len(man['layers'])} layers, expected 1")
        layer = tarfile.open(fileobj=io.BytesIO(blob(man["layers"][0]["digest"])))
        files = [f for f in layer.getmembers() if not f.isdir()]
        if [f.name.lstrip("./") for f in files] != ["shim"]:
            sys.exit(f"{plat}: the layer holds {[f.name for f in files]}, expected shim only")
        if files[0].mode & 0o777 != 0o755:
            sys.exit(f"{plat}: /shim has mode {oct(files[0].mode)}")
        data = layer.extractfile(files[0]).read()
        with open(f"{bindir}/{want[plat]}", "rb") as f:
            if hashlib.sha256(data).digest() != hashlib.sha256(f.read()).digest():
                sys.exit(f"{plat}: /shim is not {want[plat]}")
        got[plat] = m["digest"]
        print(f"{plat}: {m['digest'][:19]}... /shim = {want[plat]} ({len(data)} bytes)")
    missing = set(want) - set(got)
    if missing:
        sys.exit(f"{path}: no image for {sorted(missing)}")
    ref = top.get("annotations", {}).get("org.opencontainers.image.ref.name", "")
    print(f"{path}: manifest list {top['digest'][:19]}... ({ref}), {len(got)} platforms")


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3:])

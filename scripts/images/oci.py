#!/usr/bin/env python3
"""OCI image archives for scripts/images.sh, without Docker or a registry.

An archive is an OCI image layout in a tar file: one gzip'd rootfs layer, an image config, a
manifest, and an index whose annotation `io.containerd.image.name` carries the full image name,
so that `ctr -n k8s.io images import FILE` files it under that name and `skopeo inspect
oci-archive:FILE` reads it.

Subcommands (all errors exit non-zero with a message prefixed "images:"):

  targets   --dockerfile F                    the images services/Dockerfile describes
  key       [--text S] [--file F] [--tree D] [--ldd BIN]...
                                              a hash of the inputs of one archive
  workspace --dockerfile F --target T --bin-dir D --ref R --out FILE
                                              a Panthera image from a binary of the workspace
  store     --rootfs TAR --ref R --out FILE [config and file options]
                                              a data-store image from an mmdebstrap rootfs
  check     --dockerfile F --target T --ref R --archive FILE
                                              the archive's config against services/Dockerfile
  info      --archive FILE                    the name and manifest digest of an archive

services/Dockerfile is the source of truth for the Panthera images: their layout, user, env,
entrypoint, command, exposed ports and working directory are read from it, never restated here.
Only what its base image (distroless cc-debian12:nonroot) contributes is written down below,
because a Dockerfile cannot say it.
"""

import argparse
import hashlib
import io
import json
import os
import platform
import re
import shlex
import stat
import subprocess
import sys
import tarfile
import time
import zlib

# What gcr.io/distroless/cc-debian12:nonroot puts in an image, besides its files: the config a
# Dockerfile's ENV/USER/WORKDIR start from. Its files are made by workspace_tree().
DISTROLESS_BASES = ("gcr.io/distroless/cc-debian12:nonroot",)
DISTROLESS_CONFIG = {
    "User": "65532",
    "Env": [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
    ],
    "WorkingDir": "/home/nonroot",
}
# distroless' /etc/passwd and /etc/group: root, nobody and nonroot (65532); no login shell.
PASSWD = (
    "root:x:0:0:root:/root:/sbin/nologin\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
    "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
)
GROUP = "root:x:0:\nnobody:x:65534:\ntty:x:5:\nstaff:x:50:\nnonroot:x:65532:\n"
NSSWITCH = "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
# The fields `check` compares (the ones a Dockerfile sets).
CHECKED = ("User", "Entrypoint", "Cmd", "Env", "WorkingDir", "ExposedPorts")

MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def die(msg):
    print(f"images: {msg}", file=sys.stderr)
    sys.exit(1)


def epoch():
    """File times and the config's `created`: SOURCE_DATE_EPOCH when set (reproducible)."""
    v = os.environ.get("SOURCE_DATE_EPOCH")
    return int(v) if v else int(time.time())


def oci_arch():
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(m, m)


# --- services/Dockerfile -------------------------------------------------------------------------

class DockerfileError(Exception):
    pass


def dockerfile_lines(path):
    """Logical instructions: comments dropped, backslash continuations joined."""
    out, cur, start = [], "", 0
    with open(path, encoding="utf-8") as f:
        for no, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            if not cur and (not line.strip() or line.lstrip().startswith("#")):
                continue
            if cur and line.lstrip().startswith("#"):
                continue  # comment lines inside a continued instruction are dropped too
            if not cur:
                start = no
            if line.rstrip().endswith("\\"):
                cur += line.rstrip()[:-1] + " "
                continue
            cur += line
            out.append((start, cur.strip()))
            cur = ""
    if cur:
        raise DockerfileError(f"line {start}: the last instruction ends with a backslash")
    return out


def exec_form(where, kind, rest):
    try:
        val = json.loads(rest)
    except ValueError:
        val = None
    if not isinstance(val, list) or not all(isinstance(v, str) for v in val):
        raise DockerfileError(
            f"{where}: {kind} must be in exec form (a JSON array of strings); the shell form needs "
            "/bin/sh, which the distroless base has not")
    return val


def parse_env(where, rest):
    try:
        words = shlex.split(rest, posix=True)
    except ValueError as e:
        raise DockerfileError(f"{where}: ENV: {e}")
    if not words:
        raise DockerfileError(f"{where}: ENV without a value")
    if "=" not in words[0]:  # legacy form: ENV KEY value with spaces
        pairs = [(words[0], " ".join(words[1:]))]
    else:
        pairs = []
        for w in words:
            if "=" not in w:
                raise DockerfileError(f"{where}: ENV: '{w}' is not KEY=VALUE")
            k, v = w.split("=", 1)
            pairs.append((k, v))
    for k, v in pairs:
        if "$" in v or "$" in k:
            raise DockerfileError(f"{where}: ENV {k}: variable substitution is not understood here")
    return pairs


def parse_expose(where, rest):
    ports = []
    for w in rest.split():
        m = re.fullmatch(r"(\d+)(?:/(tcp|udp|sctp))?", w)
        if not m:
            raise DockerfileError(f"{where}: EXPOSE '{w}' is not PORT or PORT/PROTOCOL")
        ports.append(f"{m.group(1)}/{m.group(2) or 'tcp'}")
    if not ports:
        raise DockerfileError(f"{where}: EXPOSE without a port")
    return ports


def parse_copy(where, rest):
    flags, args = {}, []
    try:
        words = shlex.split(rest)
    except ValueError as e:
        raise DockerfileError(f"{where}: COPY: {e}")
    for w in words:
        if w.startswith("--") and not args:
            k, _, v = w[2:].partition("=")
            if k not in ("from", "chown", "chmod", "link"):
                raise DockerfileError(f"{where}: COPY flag --{k} is not understood here")
            flags[k] = v
        else:
            args.append(w)
    if "from" not in flags:
        raise DockerfileError(f"{where}: COPY without --from (files from the build context) is not understood here")
    if len(args) != 2:
        raise DockerfileError(f"{where}: COPY must copy exactly one binary to one path, got {args}")
    src, dest = args
    if any(c in src for c in "*?[") or not dest.startswith("/"):
        raise DockerfileError(f"{where}: COPY needs a plain source file and an absolute destination")
    if dest.endswith("/"):
        dest += os.path.basename(src)
    chown = flags.get("chown", "0:0")
    if not re.fullmatch(r"\d+(:\d+)?", chown):
        raise DockerfileError(f"{where}: COPY --chown={chown}: only numeric UID[:GID] is understood here")
    uid, _, gid = chown.partition(":")
    chmod = flags.get("chmod")
    if chmod is not None and not re.fullmatch(r"[0-7]{3,4}", chmod):
        raise DockerfileError(f"{where}: COPY --chmod={chmod}: only an octal mode is understood here")
    return {
        "source": os.path.basename(src),
        "dest": dest,
        "uid": int(uid),
        "gid": int(gid or uid),
        "mode": int(chmod, 8) if chmod else None,
    }


def parse_dockerfile(path):
    """The images services/Dockerfile builds from its distroless runtime stage.

    Returns {"targets": [{target, image, copy, config}]}. Every instruction in the runtime stage and
    in the stages built `FROM <runtime stage>` must be one this function understands; anything
    else is an error, so that the images built here cannot silently differ from Docker's.
    """
    stages, order = {}, []
    for lineno, text in dockerfile_lines(path):
        where = f"{path}:{lineno}"
        word, _, rest = text.partition(" ")
        ins, rest = word.upper(), rest.strip()
        if ins == "FROM":
            m = re.fullmatch(r"(?:--platform=\S+\s+)?(\S+)(?:\s+[Aa][Ss]\s+(\S+))?", rest)
            if not m:
                raise DockerfileError(f"{where}: FROM '{rest}' is not understood")
            name = m.group(2) or f"#{len(order)}"
            stages[name] = {"base": m.group(1), "lines": [], "where": where}
            order.append(name)
        elif ins == "ARG" and not order:
            continue  # build arguments of FROM lines (the build stage's toolchain version)
        elif not order:
            raise DockerfileError(f"{where}: {ins} before the first FROM")
        else:
            stages[order[-1]]["lines"].append((where, ins, rest))

    def runtime_config(stage):
        cfg = json.loads(json.dumps(DISTROLESS_CONFIG))
        cfg["ExposedPorts"], cfg["Labels"], cfg["Entrypoint"], cfg["Cmd"] = {}, {}, None, None
        apply(cfg, stage, allowed=("USER", "WORKDIR", "ENV", "LABEL", "EXPOSE"))
        return cfg

    def apply(cfg, stage, allowed, copies=None):
        for where, ins, rest in stage["lines"]:
            if ins not in allowed:
                raise DockerfileError(
                    f"{where}: {ins} in stage '{stage['name']}' is not something scripts/images.sh "
                    "reproduces; teach scripts/images/oci.py about it")
            if ins == "USER":
                if not rest or "$" in rest:
                    raise DockerfileError(f"{where}: USER '{rest}' is not understood")
                cfg["User"] = rest
            elif ins == "WORKDIR":
                if "$" in rest:
                    raise DockerfileError(f"{where}: WORKDIR with a variable is not understood")
                cfg["WorkingDir"] = os.path.normpath(os.path.join(cfg.get("WorkingDir") or "/", rest))
            elif ins == "ENV":
                env = cfg["Env"]
                for k, v in parse_env(where, rest):
                    env[:] = [e for e in env if e.split("=", 1)[0] != k] + [f"{k}={v}"]
            elif ins == "LABEL":
                for k, v in parse_env(where, rest):
                    cfg["Labels"][k] = v
            elif ins == "EXPOSE":
                for p in parse_expose(where, rest):
                    cfg["ExposedPorts"][p] = {}
            elif ins == "ENTRYPOINT":
                cfg["Entrypoint"] = exec_form(where, ins, rest)
                cfg["Cmd"] = None  # Docker drops an inherited CMD when ENTRYPOINT is set
            elif ins == "CMD":
                cfg["Cmd"] = exec_form(where, ins, rest)
            elif ins == "COPY":
                copies.append(parse_copy(where, rest))

    for name in order:
        stages[name]["name"] = name
    targets = []
    for name in order:
        parent = stages.get(stages[name]["base"])
        if parent is None:
            continue  # an external base: the build stage, or the runtime stage itself
        if parent["base"].split("@")[0] not in DISTROLESS_BASES:
            raise DockerfileError(
                f"{stages[name]['where']}: stage '{name}' derives from '{parent['name']}', which is FROM "
                f"{parent['base']}; scripts/images.sh only reproduces {', '.join(DISTROLESS_BASES)}")
        cfg = runtime_config(parent)
        copies = []
        apply(cfg, stages[name], allowed=("USER", "WORKDIR", "ENV", "LABEL", "EXPOSE", "ENTRYPOINT", "CMD", "COPY"),
              copies=copies)
        if len(copies) != 1:
            raise DockerfileError(f"{stages[name]['where']}: stage '{name}' must COPY exactly one binary, has {len(copies)}")
        if copies[0]["dest"] != "/usr/local/bin/" + copies[0]["source"]:
            raise DockerfileError(
                f"{stages[name]['where']}: stage '{name}' copies {copies[0]['source']} to {copies[0]['dest']}; "
                "docs/contracts.md promises /usr/local/bin/<binary>")
        targets.append({
            "target": name,
            "image": os.path.basename(copies[0]["dest"]),
            "copy": copies[0],
            "config": {k: v for k, v in cfg.items() if v not in ({}, None) or k in ("Entrypoint", "Cmd")},
        })
    if not targets:
        raise DockerfileError(f"{path}: no stage is built FROM a distroless runtime stage")
    names = [t["image"] for t in targets]
    if len(set(names)) != len(names):
        raise DockerfileError(f"{path}: two stages install the same binary: {names}")
    return {"targets": targets}


def load_dockerfile(path):
    try:
        return parse_dockerfile(path)
    except (DockerfileError, OSError) as e:
        die(f"cannot read the images from {path}: {e}")


def find_target(spec, name):
    for t in spec["targets"]:
        if name in (t["target"], t["image"]):
            return t
    die(f"services/Dockerfile has no image '{name}' (it has: {', '.join(t['image'] for t in spec['targets'])})")


# --- layers --------------------------------------------------------------------------------------

class Entry:
    """One tar member of a layer: a directory, a regular file (from a path or bytes) or a symlink."""

    def __init__(self, path, kind, mode=0o755, uid=0, gid=0, src=None, data=None, target=None):
        self.path, self.kind, self.mode, self.uid, self.gid = path.strip("/"), kind, mode, uid, gid
        self.src, self.data, self.target = src, data, target


class HashingGzipWriter:
    """Gzips a tar stream into a file, hashing both the tar (the diff_id) and the blob (digest).
    zlib's gzip framing carries no name or time, so equal tars give equal blobs."""

    def __init__(self, path):
        self.f = open(path, "wb")
        self.z = zlib.compressobj(6, zlib.DEFLATED, 31)
        self.tar_hash, self.blob_hash, self.blob_size = hashlib.sha256(), hashlib.sha256(), 0

    def _out(self, c):
        self.blob_hash.update(c)
        self.blob_size += len(c)
        self.f.write(c)

    def write(self, b):
        self.tar_hash.update(b)
        c = self.z.compress(b)
        if c:
            self._out(c)
        return len(b)

    def finish(self):
        self._out(self.z.flush())
        self.f.close()
        return "sha256:" + self.tar_hash.hexdigest(), "sha256:" + self.blob_hash.hexdigest(), self.blob_size


def tarinfo(e, mtime):
    ti = tarfile.TarInfo(e.path)
    ti.mode, ti.uid, ti.gid, ti.mtime, ti.uname, ti.gname = e.mode, e.uid, e.gid, mtime, "", ""
    if e.kind == "dir":
        ti.type = tarfile.DIRTYPE
    elif e.kind == "symlink":
        ti.type, ti.linkname = tarfile.SYMTYPE, e.target
    return ti


def write_layer(path, entries, mtime, base_tar=None, drop=()):
    """A gzip'd layer: the members of base_tar (less those replaced or dropped), then entries."""
    w = HashingGzipWriter(path)
    own = {e.path for e in entries}
    with tarfile.open(fileobj=w, mode="w|", format=tarfile.PAX_FORMAT) as out:
        if base_tar:
            with tarfile.open(base_tar, mode="r|") as src:
                for ti in src:
                    name = ti.name[2:] if ti.name.startswith("./") else ti.name.lstrip("/")
                    name = name.rstrip("/")
                    if not name or name in own or any(name == d or name.startswith(d + "/") for d in drop):
                        continue
                    # Device nodes are the container runtime's business, not the image's.
                    if ti.ischr() or ti.isblk() or ti.isfifo():
                        continue
                    ti.name = name
                    if ti.islnk():
                        ti.linkname = ti.linkname[2:] if ti.linkname.startswith("./") else ti.linkname.lstrip("/")
                    out.addfile(ti, src.extractfile(ti) if ti.isreg() else None)
        for e in entries:
            ti = tarinfo(e, mtime)
            if e.kind == "file":
                if e.data is not None:
                    ti.size = len(e.data)
                    out.addfile(ti, io.BytesIO(e.data))
                else:
                    ti.size = os.path.getsize(e.src)
                    with open(e.src, "rb") as f:
                        out.addfile(ti, f)
            else:
                out.addfile(ti)
    return w.finish()


class Tree:
    """Entries of a rootfs built file by file, with parent directories made as needed."""

    def __init__(self):
        self.entries = {}

    def dir(self, path, mode=0o755, uid=0, gid=0):
        path = path.strip("/")
        if not path:
            return
        self.dir(os.path.dirname(path))
        old = self.entries.get(path)
        if old is not None and old.kind != "dir":
            die(f"{path} is both a {old.kind} and a directory in the image")
        if old is None or (mode, uid, gid) != (0o755, 0, 0):
            self.entries[path] = Entry(path, "dir", mode, uid, gid)

    def file(self, path, mode=0o644, uid=0, gid=0, src=None, data=None):
        self.dir(os.path.dirname(path.strip("/")))
        self.entries[path.strip("/")] = Entry(path, "file", mode, uid, gid, src=src, data=data)

    def symlink(self, path, target):
        self.dir(os.path.dirname(path.strip("/")))
        self.entries[path.strip("/")] = Entry(path, "symlink", 0o777, target=target)

    def host_path(self, path):
        """A file of this machine at the same path, with every symlink on the way (merged /usr)."""
        parts = [p for p in path.split("/") if p]
        cur = ""
        for i, part in enumerate(parts):
            cur += "/" + part
            st = os.lstat(cur)
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(cur)
                self.symlink(cur, target)
                resolved = os.path.normpath(os.path.join(os.path.dirname(cur), target))
                return self.host_path("/".join([resolved] + parts[i + 1:]))
            if stat.S_ISDIR(st.st_mode):
                if cur.strip("/") not in self.entries:
                    self.dir(cur)
            elif i == len(parts) - 1 and stat.S_ISREG(st.st_mode):
                self.file(cur, mode=stat.S_IMODE(st.st_mode) & 0o755, src=cur)
            else:
                die(f"{cur} is not a regular file, directory or symlink")

    def sorted(self):
        return [self.entries[k] for k in sorted(self.entries)]


def ldd(binary):
    """The shared libraries the dynamic loader of this machine resolves for a binary."""
    try:
        out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=False)
    except OSError as e:
        die(f"ldd: {e}")
    if "not a dynamic executable" in out.stderr + out.stdout or "statically linked" in out.stdout:
        return []
    if out.returncode != 0:
        die(f"ldd {binary} failed: {out.stderr.strip()}")
    libs = []
    for line in out.stdout.splitlines():
        line = line.strip()
        if "=> not found" in line:
            die(f"{binary} needs {line.split()[0]}, which this machine does not have")
        m = re.match(r"(?:\S+ => )?(/\S+) \(0x", line)
        if m:
            libs.append(m.group(1))
    return libs


def workspace_tree(binary, copy):
    """What distroless cc-debian12:nonroot gives (glibc and libgcc as ldd names them, CA
    certificates, passwd/group with nonroot 65532, /tmp, no shell) plus the binary."""
    t = Tree()
    for lib in ldd(binary):
        t.host_path(lib)
    if not os.path.isfile(CA_BUNDLE):
        die(f"{CA_BUNDLE} is missing on this machine (apt-get install ca-certificates)")
    t.file(CA_BUNDLE, src=CA_BUNDLE)
    t.file("/etc/passwd", data=PASSWD.encode())
    t.file("/etc/group", data=GROUP.encode())
    t.file("/etc/nsswitch.conf", data=NSSWITCH.encode())
    if os.path.isfile("/etc/os-release"):
        t.file("/etc/os-release", src=os.path.realpath("/etc/os-release"))
    t.dir("/root", mode=0o700)
    t.dir("/home/nonroot", mode=0o700, uid=65532, gid=65532)
    t.dir("/tmp", mode=0o1777)
    mode = copy["mode"] if copy["mode"] is not None else stat.S_IMODE(os.stat(binary).st_mode)
    t.file(copy["dest"], mode=mode, uid=copy["uid"], gid=copy["gid"], src=binary)
    return t


# --- archives ------------------------------------------------------------------------------------

def write_archive(out, ref, config, layer_path, diff_id, layer_digest, layer_size, mtime, history):
    """The OCI layout (oci-layout, index.json, blobs) as one tar file at `out`."""
    arch = oci_arch()
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(mtime))
    cfg = {
        "created": created,
        "architecture": arch,
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created, "created_by": history}],
    }
    cfg_bytes = json.dumps(cfg, sort_keys=True, separators=(",", ":")).encode()
    cfg_digest = "sha256:" + hashlib.sha256(cfg_bytes).hexdigest()
    manifest = {
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": {"mediaType": MT_CONFIG, "digest": cfg_digest, "size": len(cfg_bytes)},
        "layers": [{"mediaType": MT_LAYER, "digest": layer_digest, "size": layer_size}],
    }
    man_bytes = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    man_digest = "sha256:" + hashlib.sha256(man_bytes).hexdigest()
    tag = ref.rsplit(":", 1)[1] if ":" in ref.rsplit("/", 1)[-1] else "latest"
    index = {
        "schemaVersion": 2,
        "mediaType": MT_INDEX,
        "manifests": [{
            "mediaType": MT_MANIFEST, "digest": man_digest, "size": len(man_bytes),
            "platform": {"architecture": arch, "os": "linux"},
            "annotations": {"io.containerd.image.name": ref, "org.opencontainers.image.ref.name": tag},
        }],
    }
    idx_bytes = json.dumps(index, sort_keys=True, separators=(",", ":")).encode()

    def add_bytes(tar, name, data):
        ti = tarfile.TarInfo(name)
        ti.size, ti.mode, ti.mtime = len(data), 0o644, mtime
        tar.addfile(ti, io.BytesIO(data))

    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        add_bytes(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add_bytes(tar, "index.json", idx_bytes)
        for d in ("blobs", "blobs/sha256"):
            ti = tarfile.TarInfo(d)
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, mtime
            tar.addfile(ti)
        add_bytes(tar, "blobs/sha256/" + cfg_digest[7:], cfg_bytes)
        add_bytes(tar, "blobs/sha256/" + man_digest[7:], man_bytes)
        ti = tarfile.TarInfo("blobs/sha256/" + layer_digest[7:])
        ti.size, ti.mode, ti.mtime = layer_size, 0o644, mtime
        with open(layer_path, "rb") as f:
            tar.addfile(ti, f)
    return man_digest


def read_archive(path):
    """(ref, manifest digest, config, manifest, open tar) of an archive written by write_archive."""
    try:
        tar = tarfile.open(path, "r")
    except (OSError, tarfile.TarError) as e:
        die(f"{path}: not a readable archive: {e}")

    def blob(name):
        try:
            return json.load(tar.extractfile(name))
        except (KeyError, ValueError) as e:
            die(f"{path}: {name}: {e}")

    index = blob("index.json")
    if len(index.get("manifests", [])) != 1:
        die(f"{path}: expected one manifest in index.json")
    desc = index["manifests"][0]
    ref = desc.get("annotations", {}).get("io.containerd.image.name", "")
    manifest = blob("blobs/sha256/" + desc["digest"][7:])
    config = blob("blobs/sha256/" + manifest["config"]["digest"][7:])
    return ref, desc["digest"], config, manifest, tar


# --- subcommands ---------------------------------------------------------------------------------

def cmd_targets(a):
    for t in load_dockerfile(a.dockerfile)["targets"]:
        print(f"{t['image']}\t{t['target']}")


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cmd_key(a):
    h = hashlib.sha256()
    for kind, val in a.items:
        # A path is named by its last part only: the same inputs give the same key from any
        # clone of the repository (CI builds from a fresh clone, wherever it is put).
        name = val if kind == "text" else os.path.basename(os.path.normpath(val))
        h.update(f"{kind}\0{name}\0".encode())
        if kind == "file":
            h.update(sha256_file(val).encode())
        elif kind == "tree":
            for root, dirs, files in os.walk(val):
                dirs.sort()
                for name in sorted(files):
                    p = os.path.join(root, name)
                    st = os.stat(p)
                    h.update(f"{os.path.relpath(p, val)}\0{st.st_mode:o}\0{sha256_file(p)}\0".encode())
        elif kind == "ldd":
            h.update(sha256_file(val).encode())
            for lib in ldd(val) + [CA_BUNDLE]:
                h.update(f"{lib}\0{sha256_file(lib)}\0".encode())
    print(h.hexdigest())


def cmd_workspace(a):
    t = find_target(load_dockerfile(a.dockerfile), a.target)
    binary = os.path.join(a.bin_dir, t["copy"]["source"])
    if not os.path.isfile(binary):
        die(f"{binary} is missing: build it first (cargo build --release -p {t['image']}, or pass --bin-dir)")
    mtime = epoch()
    layer = a.out + ".layer"
    diff_id, digest, size = write_layer(layer, workspace_tree(binary, t["copy"]).sorted(), mtime)
    write_archive(a.out, a.ref, t["config"], layer, diff_id, digest, size, mtime,
                  f"scripts/images.sh: services/Dockerfile target {t['target']}")
    os.unlink(layer)


def parse_owned(spec, what):
    """SRC:DEST:MODE:UID:GID (files, trees) or DEST:MODE:UID:GID (dirs)."""
    parts = spec.split(":")
    n = 4 if what == "dir" else 5
    if len(parts) != n:
        die(f"--{what} {spec}: expected {n} fields separated by ':'")
    *paths, mode, uid, gid = parts
    return paths, int(mode, 8), int(uid), int(gid)


def cmd_store(a):
    t = Tree()
    for spec in a.dir:
        (dest,), mode, uid, gid = parse_owned(spec, "dir")
        t.dir(dest, mode, uid, gid)
    for spec in a.file:
        (src, dest), mode, uid, gid = parse_owned(spec, "file")
        t.file(dest, mode, uid, gid, src=src)
    for spec in a.tree:
        (src, dest), mode, uid, gid = parse_owned(spec, "tree")
        for name in sorted(os.listdir(src)):
            if os.path.isfile(os.path.join(src, name)):
                t.file(os.path.join(dest, name), mode, uid, gid, src=os.path.join(src, name))
    config = {"User": a.user, "Env": a.env, "WorkingDir": a.workdir}
    if a.entrypoint:
        config["Entrypoint"] = json.loads(a.entrypoint)
    if a.cmd:
        config["Cmd"] = json.loads(a.cmd)
    if a.expose:
        config["ExposedPorts"] = {p: {} for p in a.expose}
    if a.volume:
        config["Volumes"] = {v: {} for v in a.volume}
    if a.stop_signal:
        config["StopSignal"] = a.stop_signal
    mtime = epoch()
    layer = a.out + ".layer"
    # Our own files go in over the Debian rootfs. Only the directories asked for with --dir are
    # written: the others (/, /usr, ...) are the rootfs' own, and must keep their owner and mode.
    asked = {parse_owned(d, "dir")[0][0].strip("/") for d in a.dir}
    own = [e for e in t.sorted() if e.kind != "dir" or e.path in asked]
    diff_id, digest, size = write_layer(layer, own, mtime, base_tar=a.rootfs, drop=[d.strip("/") for d in a.drop])
    write_archive(a.out, a.ref, config, layer, diff_id, digest, size, mtime, f"scripts/images.sh: {a.history}")
    os.unlink(layer)


def cmd_check(a):
    t = find_target(load_dockerfile(a.dockerfile), a.target)
    ref, _, config, manifest, tar = read_archive(a.archive)
    problems = []
    if ref != a.ref:
        problems.append(f"it is named {ref!r}, expected {a.ref!r}")
    got = config.get("config", {})
    for field in CHECKED:
        want, have = t["config"].get(field), got.get(field)
        if want in ({}, []):
            want = None
        if have in ({}, []):
            have = None
        if want != have:
            problems.append(f"{field} is {json.dumps(have)}, services/Dockerfile says {json.dumps(want)}")
    # The binary itself: where the Dockerfile's COPY puts it, with its owner and mode.
    layer = manifest["layers"][0]["digest"][7:]
    dest, copy = t["copy"]["dest"].strip("/"), t["copy"]
    found = None
    with tarfile.open(fileobj=tar.extractfile("blobs/sha256/" + layer), mode="r|gz") as lt:
        for ti in lt:
            if ti.name.strip("/").removeprefix("./") == dest:
                found = ti
    if found is None or not found.isreg():
        problems.append(f"/{dest} is not a file in the image")
    else:
        if (found.uid, found.gid) != (copy["uid"], copy["gid"]):
            problems.append(f"/{dest} is owned by {found.uid}:{found.gid}, services/Dockerfile says {copy['uid']}:{copy['gid']}")
        if copy["mode"] is not None and found.mode != copy["mode"]:
            problems.append(f"/{dest} has mode {found.mode:o}, services/Dockerfile says {copy['mode']:o}")
    if problems:
        print(f"images: {a.archive} drifted from services/Dockerfile target {t['target']}:", file=sys.stderr)
        for p in problems:
            print(f"images:   {p}", file=sys.stderr)
        print("images: rebuild it with scripts/images.sh build", file=sys.stderr)
        sys.exit(1)
    print(f"images: {ref}: matches services/Dockerfile target {t['target']}")


def cmd_info(a):
    ref, digest, _, _, _ = read_archive(a.archive)
    print(ref, digest)


class KeyItem(argparse.Action):
    def __call__(self, parser, ns, values, option_string=None):
        items = getattr(ns, "items", None) or []
        items.append((option_string.lstrip("-"), values))
        ns.items = items


def main():
    p = argparse.ArgumentParser(prog="oci.py")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("targets")
    s.add_argument("--dockerfile", required=True)
    s = sub.add_parser("key")
    for opt in ("--text", "--file", "--tree", "--ldd"):
        s.add_argument(opt, action=KeyItem, dest="items", default=[])
    s = sub.add_parser("workspace")
    for opt in ("--dockerfile", "--target", "--bin-dir", "--ref", "--out"):
        s.add_argument(opt, required=True)
    s = sub.add_parser("store")
    for opt in ("--rootfs", "--ref", "--out", "--user", "--workdir", "--history"):
        s.add_argument(opt, required=True)
    s.add_argument("--entrypoint")
    s.add_argument("--cmd")
    s.add_argument("--stop-signal")
    for opt in ("--env", "--expose", "--volume", "--dir", "--file", "--tree", "--drop"):
        s.add_argument(opt, action="append", default=[])
    s = sub.add_parser("check")
    for opt in ("--dockerfile", "--target", "--ref", "--archive"):
        s.add_argument(opt, required=True)
    s = sub.add_parser("info")
    s.add_argument("--archive", required=True)
    a = p.parse_args()
    {"targets": cmd_targets, "key": cmd_key, "workspace": cmd_workspace, "store": cmd_store,
     "check": cmd_check, "info": cmd_info}[a.command](a)


if __name__ == "__main__":
    main()

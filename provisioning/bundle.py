"""The software shipped to machines: kubelite's wheel and a wheelhouse of its runtime
dependencies, in one tar file, so machines never need the internet.

What goes in is decided first and cheaply (`contents`): the project's sources and the
runtime requirements, i.e. setup.cfg's `install_requires` and everything they need,
pinned to the versions installed here (which requirements.lock fixed). Their hash names
the bundle; a bundle with that hash already in the cache (`~/.cache/kubelite/bundles`)
is used as it is, and machines that report the same hash are not touched.

Building (`build`) runs `pip wheel --no-deps --no-build-isolation` on a copy of the
sources (the repository stays clean) and `pip wheel --no-deps` on the pinned list,
from pip's configured indexes and cache. Where pip cannot fetch a wheel (no network,
cold cache), the installed distribution is packed back into a wheel from its RECORD:
same files, same version, same tags. The machine then runs
`pip install --no-index --no-deps --no-compile` on exactly these files.
"""

from __future__ import annotations

import base64
import configparser
import hashlib
import importlib.metadata as md
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("store", "apiserver", "controllers", "agents", "provisioning")
TOP_FILES = ("setup.cfg", "pyproject.toml", "kubelite_cli.py")
PIP_TIMEOUT = 300.0


class BundleError(RuntimeError):
    pass


@dataclass(frozen=True)
class Bundle:
    path: Path
    digest: str        # names the bundle; machines keep it in their install marker
    wheels: tuple[str, ...]


# --- what goes in (pure but for reading files and metadata) ----------------------------

def project_files(root: Path = ROOT) -> list[Path]:
    files = [root / f for f in TOP_FILES]
    for package in PACKAGES:
        files += sorted(p for p in (root / package).rglob("*.py") if "__pycache__" not in p.parts)
    return files


def install_requires(root: Path = ROOT) -> list[str]:
    cfg = configparser.ConfigParser()
    cfg.read(root / "setup.cfg")
    text = cfg.get("options", "install_requires", fallback="")
    return [line.strip() for line in text.splitlines() if line.strip()]


def runtime_pins(roots: list[str]) -> dict[str, str]:
    """{distribution name: installed version} for `roots` and all they require."""
    pins: dict[str, str] = {}
    stack = [Requirement(r).name for r in roots]
    while stack:
        name = stack.pop()
        key = canonicalize_name(name)
        if key in pins:
            continue
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            raise BundleError(f"{name} is not installed here; run scripts/setup.sh") from None
        pins[key] = dist.version
        for text in dist.requires or ():
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                stack.append(req.name)
    return dict(sorted(pins.items()))


def digest(files: list[Path], pins: dict[str, str], root: Path = ROOT) -> str:
    h = hashlib.sha256(f"{sys.implementation.cache_tag}\n".encode())
    for name, version in pins.items():
        h.update(f"{name}=={version}\n".encode())
    for path in files:
        h.update(str(path.relative_to(root)).encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()[:20]


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "kubelite" / "bundles"


# --- building ---------------------------------------------------------------------------

def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                          capture_output=True, text=True, timeout=PIP_TIMEOUT, check=False)


def repack(name: str, out_dir: Path) -> Path:
    """The installed distribution `name` packed back into a wheel (from its RECORD)."""
    dist = md.distribution(name)
    files = [f for f in dist.files or () if not str(f).startswith("..")
             and "__pycache__" not in f.parts]
    info = next((f for f in files if f.name == "WHEEL" and f.parent.name.endswith(".dist-info")),
                None)
    tag = "py3-none-any"
    if info is not None:
        tags = [ln.split(":", 1)[1].strip() for ln in dist.locate_file(info).read_text()
                .splitlines() if ln.startswith("Tag:")]
        tag = tags[0] if tags else tag
    wheel_name = f"{canonicalize_name(name).replace('-', '_')}-{dist.version}-{tag}.whl"
    path = out_dir / wheel_name
    record_rows = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        record_name = None
        for f in files:
            if f.name == "RECORD":
                record_name = str(f)
                continue
            data = Path(dist.locate_file(f)).read_bytes()
            zf.writestr(str(f), data)
            sha = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record_rows.append(f"{f},sha256={sha},{len(data)}")
        if record_name is not None:
            zf.writestr(record_name, "\n".join([*record_rows, f"{record_name},,"]) + "\n")
    return path


def _wheels(pins: dict[str, str], src_files: list[Path], root: Path, out: Path) -> None:
    src = out.parent / "src"
    for path in src_files:
        target = src / path.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    proc = _pip("wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(src))
    if proc.returncode != 0:
        raise BundleError(f"building kubelite's wheel failed:\n{proc.stderr[-2000:]}")
    reqs = out.parent / "requirements.txt"
    reqs.write_text("".join(f"{n}=={v}\n" for n, v in pins.items()))
    proc = _pip("wheel", "--no-deps", "-q", "-w", str(out), "-r", str(reqs))
    have = {canonicalize_name(p.name.split("-")[0]) for p in out.glob("*.whl")}
    for name in pins:
        if name not in have:              # pip could not fetch it: pack what is installed
            repack(name, out)


def contents(root: Path = ROOT) -> tuple[list[Path], dict[str, str], str]:
    files = project_files(root)
    pins = runtime_pins(install_requires(root))
    return files, pins, digest(files, pins, root)


def build(root: Path = ROOT, cache: Path | None = None) -> Bundle:
    """The bundle for this source tree, from the cache or built now."""
    files, pins, digest_ = contents(root)
    cache = cache or cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"kubelite-bundle-{digest_}.tar"
    if not path.exists():
        with tempfile.TemporaryDirectory(prefix="kubelite-bundle-") as tmp:
            out = Path(tmp) / "wheels"
            out.mkdir()
            _wheels(pins, files, root, out)
            part = path.with_suffix(".part")
            with tarfile.open(part, "w") as tar:
                for whl in sorted(out.glob("*.whl")):
                    tar.add(whl, arcname=whl.name)
            os.replace(part, path)
    with tarfile.open(path) as tar:
        names = tuple(sorted(tar.getnames()))
    return Bundle(path, digest_, names)

"""The cluster directory on the operator's machine (`./.kubelite-cluster` or `--dir`).

    pki/                the cluster's PKI (provisioning/cluster_pki.py)
    state.json          what was installed where: machines, the store's join order,
                        the bundle, the local forward
    admin.kubeconfig    for kubectl and kubelite's clients
    snapshots/          store backups (kubelite snapshot)
    up.log              every step of every run, with timestamps

`state.json` is written atomically after every step that changes the fleet, so a run
that fails part-way leaves a record the next run continues from.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DIR = ".kubelite-cluster"
log = logging.getLogger("kubelite.provisioning")


@dataclass(frozen=True)
class ClusterDir:
    path: Path

    @classmethod
    def at(cls, path: str | Path | None) -> ClusterDir:
        return cls(Path(path or DEFAULT_DIR).resolve())

    @property
    def pki(self) -> Path:
        return self.path / "pki"

    @property
    def state_file(self) -> Path:
        return self.path / "state.json"

    @property
    def kubeconfig(self) -> Path:
        return self.path / "admin.kubeconfig"

    @property
    def snapshots(self) -> Path:
        return self.path / "snapshots"

    @property
    def log_file(self) -> Path:
        return self.path / "up.log"

    def create(self) -> None:
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)

    def load(self) -> dict:
        try:
            return json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return {"machines": {}, "store_order": []}

    def save(self, state: dict) -> None:
        self.create()
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, self.state_file)

    def material(self) -> dict[str, bytes]:
        """Every PKI file by its path below pki/ (what machine_config reads)."""
        return {str(p.relative_to(self.pki)): p.read_bytes()
                for p in self.pki.rglob("*") if p.is_file() and not p.name.endswith(".bak")}

    @contextmanager
    def lock(self) -> Iterator[None]:
        """One provisioning run at a time per cluster: joins never overlap."""
        self.create()
        with open(self.path / ".lock", "w") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.info("another kubelite run holds %s; waiting", self.path)
                fcntl.flock(f, fcntl.LOCK_EX)
            yield

    def start_log(self) -> None:
        self.create()
        handler = logging.FileHandler(self.log_file)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        root = logging.getLogger("kubelite")
        if not any(isinstance(h, logging.FileHandler) and h.baseFilename == str(self.log_file)
                   for h in root.handlers):
            root.addHandler(handler)
        root.setLevel(logging.INFO)

"""The agent's small state files: replaced atomically, not fsync'd, on purpose.

Everything the agent records (IP allocations, pod network records, container records)
describes kernel objects that live exactly as long as the machine stays up: processes,
network namespaces under /run (a tmpfs), cgroups. An agent that crashes or restarts
reads the files back from the page cache, so an atomic rename is all it needs to never
see a torn file; after a power loss or a reboot the objects the files describe are gone
too, so there is nothing an fsync would have saved. Skipping it keeps a burst of pod
starts (several writes per pod) off the disk's flush queue.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Readers (and an agent that crashed mid-write) see the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, path)


def write_json(path: Path, body: object) -> None:
    write_atomic(path, json.dumps(body, indent=1, sort_keys=True).encode())

"""Running the machine's real kubectl binaries against test apiservers.

Two binaries (REQUIREMENTS §12): `/usr/bin/kubectl` is Google's dispatcher, which asks
the server's /version and runs kubectl 1.32 for our minor (it sends protobuf bodies for
the `create <kind>` generators); Debian's kubectl 1.20, unpacked by scripts/setup.sh,
speaks JSON and legacy discovery only. Each `Kubectl` has a private HOME and discovery
cache, so nothing leaks between tests or from the user's ~/.kube. A missing binary fails
the test instead of skipping it.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest

DISPATCHER = "/usr/bin/kubectl"
KUBECTL_1_20 = os.environ.get("KUBECTL_120", "/opt/kubectl-1.20/usr/bin/kubectl")
BINARIES = {"1.32": DISPATCHER, "1.20": KUBECTL_1_20}
TIMEOUT = 60.0


class Kubectl:
    def __init__(self, version: str, kubeconfig: Path, home: Path) -> None:
        binary = BINARIES[version]
        if not os.access(binary, os.X_OK):
            pytest.fail(f"{binary} is missing: run `bash scripts/setup.sh` as root",
                        pytrace=False)
        self.version = version
        self.binary = binary
        self.kubeconfig = kubeconfig
        self.home = home
        home.mkdir(parents=True, exist_ok=True)

    def argv(self, *args: str) -> list[str]:
        return [self.binary, "--kubeconfig", str(self.kubeconfig),
                "--cache-dir", str(self.home / "cache"), *args]

    def env(self) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.home)}

    def run(self, *args: str, stdin: str | None = None,
            timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(*args), input=stdin, capture_output=True, text=True,
                              timeout=timeout, env=self.env(), check=False)

    def ok(self, *args: str, stdin: str | None = None) -> str:
        """stdout of a command that must succeed."""
        result = self.run(*args, stdin=stdin)
        assert result.returncode == 0, (
            f"kubectl {self.version} {' '.join(args)} failed ({result.returncode}):\n"
            f"{result.stderr}")
        return result.stdout

    def fails(self, *args: str, stdin: str | None = None) -> str:
        """stderr of a command that must fail."""
        result = self.run(*args, stdin=stdin)
        assert result.returncode != 0, (
            f"kubectl {self.version} {' '.join(args)} succeeded:\n{result.stdout}")
        return result.stderr

    def background(self, *args: str) -> Background:
        return Background(self.argv(*args), self.env())


class Background:
    """A kubectl left running (e.g. `get -w`), its stdout collected line by line.

    `stop()` kills it through its own PID and returns everything it printed.
    """

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, name="kubectl-output", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for_lines(self, count: int, timeout: float = 20.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while len(self.lines) < count and time.monotonic() < deadline:
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        return list(self.lines)

    def stop(self) -> tuple[list[str], str]:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self._reader.join(timeout=10)
        assert self.proc.stderr is not None
        stderr = self.proc.stderr.read()
        self.proc.stdout.close()  # type: ignore[union-attr]
        self.proc.stderr.close()
        return list(self.lines), stderr


def table(out: str) -> tuple[list[str], list[list[str]]]:
    """A kubectl table: the header's column names and each row's cells (split on runs of
    two or more spaces, which is how kubectl pads columns)."""
    lines = [line for line in out.splitlines() if line.strip()]
    split = [re.split(r"\s{2,}", line.strip()) for line in lines]
    return split[0], split[1:]

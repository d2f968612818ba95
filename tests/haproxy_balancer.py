"""A real HAProxy (Debian's /usr/sbin/haproxy) in front of test apiservers.

The configuration is the one `kubelite apiserver haproxy-config` generates
(apiserver/haproxy.py), listening on a free 127.0.0.1 port; it is checked with
`haproxy -c` first. The process is started in the foreground (-db), tracked and
signalled by PID only, dies with the test process (PR_SET_PDEATHSIG), and is stopped by
`close()`. A missing binary fails the test rather than skipping it.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import pytest

from apiserver import haproxy
from tests import ports
from tests.clusters import ClusterStartError, Member, tail

HAPROXY = os.environ.get("KUBELITE_TEST_HAPROXY", "/usr/sbin/haproxy")
START_TIMEOUT = 20.0


class HAProxy:
    def __init__(self, backends: Sequence[str], directory: Path, ca_file: Path,
                 balance: str = "roundrobin") -> None:
        if not os.access(HAPROXY, os.X_OK):
            pytest.fail(f"{HAPROXY} is missing: run `bash scripts/setup.sh` as root "
                        "(it installs Debian's haproxy)", pytrace=False)
        directory.mkdir(parents=True, exist_ok=True)
        self.ca_file = ca_file
        self.port = ports.free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.config = directory / "haproxy.cfg"
        self.config.write_text(haproxy.render(backends, f"127.0.0.1:{self.port}",
                                              ca_file=ca_file, balance=balance))
        check = subprocess.run([HAPROXY, "-c", "-f", str(self.config)], capture_output=True,
                               text=True, timeout=30, check=False)
        if check.returncode != 0:
            ports.release([self.port])
            raise ClusterStartError(f"haproxy -c rejected the generated config:\n"
                                    f"{check.stdout}{check.stderr}")
        self.member = Member("haproxy", directory, directory / "haproxy.log")
        try:
            self.member.spawn([HAPROXY, "-db", "-f", str(self.config)], dict(os.environ))
            self._wait_serving()
        except BaseException:
            self.close()
            raise

    def _wait_serving(self) -> None:
        """Until /readyz answers 200 through the balancer (a backend is up)."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=1.0,
                                            context=context) as resp:
                    if resp.status == 200:
                        return
            except urllib.error.HTTPError as err:  # no backend ready yet
                err.close()
            except OSError:
                pass
            if not self.member.running or time.monotonic() > deadline:
                raise ClusterStartError("haproxy did not serve /readyz\n" + self.log_tail())
            time.sleep(0.1)

    def accepts(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0):
                return True
        except OSError:
            return False

    def log_tail(self, lines: int = 40) -> str:
        return f"--- {self.member.log_path} ---\n{tail(self.member.log_path, lines)}"

    def close(self) -> None:
        self.member.stop(grace=5.0)
        ports.release([self.port])

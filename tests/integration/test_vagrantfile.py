"""The top-level Vagrantfile under Debian's real vagrant (root).

Vagrant runs inside a network namespace made for the test that holds nothing but `lo`,
so it reaches nothing; with VAGRANT_HOME and the `.vagrant` directory in the test's
temporary directory, it leaves nothing in the repository or the home directory. No VM
is started: `vagrant validate` checks the file for both providers' settings, and
python-vagrant's `status()` shows the fleet as vagrant-libvirt sees it before
`vagrant up`, which is what `kubelite up --vagrant` must refuse clearly.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.privileges import require_root

pytestmark = pytest.mark.timeout(180)

REPO = Path(__file__).resolve().parents[2]
VAGRANT = "/usr/bin/vagrant"

# Runs inside the namespace: python-vagrant's own view, the Vagrantfile's machine table,
# and what provisioning.vagrant makes of it all.
PROBE = """
import json, os, sys
import vagrant
from provisioning import vagrant as pv
root, table = sys.argv[1], sys.argv[2]
v = vagrant.Vagrant(root=root, env={**os.environ, pv.FLEET_ENV: table})
statuses = [list(s) for s in v.status()]
ips, roles = pv.parse_fleet(open(table).read())
try:
    pv.inventory_from_vagrant(root)
    error = None
except pv.VagrantError as exc:
    error = str(exc)
print(json.dumps({"statuses": statuses, "ips": ips, "roles": roles, "error": error}))
"""


@pytest.fixture(scope="module")
def isolated_netns() -> Iterator[str]:
    require_root("creating a network namespace")
    if not os.access(VAGRANT, os.X_OK):
        pytest.fail(f"{VAGRANT} is missing: install Debian's vagrant and vagrant-libvirt "
                    "(run `bash scripts/setup.sh` as root)", pytrace=False)
    name = f"kv{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        links = subprocess.run(["ip", "-n", name, "-o", "link", "show"], check=True,
                               capture_output=True, text=True).stdout.splitlines()
        assert [line.split(":")[1].strip() for line in links] == ["lo"]
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)
        assert not Path(f"/run/netns/{name}").exists()


@pytest.fixture
def vagrant_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("VAGRANT_", "KUBELITE_"))}
    env.update({
        "VAGRANT_HOME": str(tmp_path / "vagrant.d"),
        "VAGRANT_DOTFILE_PATH": str(tmp_path / "dot-vagrant"),
        "VAGRANT_CHECKPOINT_DISABLE": "1",
        "VAGRANT_BOX_UPDATE_CHECK_DISABLE": "1",
        "VAGRANT_DEFAULT_PROVIDER": "libvirt",
    })
    return env


def in_netns(netns: str, argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", netns, *argv], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(autouse=True)
def repository_stays_clean() -> Iterator[None]:
    existed = (REPO / ".vagrant").exists()
    yield
    if not existed:
        assert not (REPO / ".vagrant").exists(), "vagrant wrote .vagrant into the repository"


@pytest.mark.parametrize("workers", ["0", "2", "5"])
def test_vagrant_validates_the_vagrantfile(isolated_netns: str, vagrant_env: dict[str, str],
                                           workers: str) -> None:
    r = in_netns(isolated_netns, [VAGRANT, "validate"],
                 {**vagrant_env, "KUBELITE_WORKERS": workers})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Vagrantfile validated successfully." in r.stdout


def test_a_bad_worker_count_is_refused_by_name(isolated_netns: str,
                                               vagrant_env: dict[str, str]) -> None:
    for bad in ("two", "-1", "201"):
        r = in_netns(isolated_netns, [VAGRANT, "validate"],
                     {**vagrant_env, "KUBELITE_WORKERS": bad})
        assert r.returncode != 0
        assert f'KUBELITE_WORKERS="{bad}": give a whole number from 0 to 200' in r.stderr


def test_python_vagrant_sees_a_fleet_that_is_not_up_yet(isolated_netns: str,
                                                        vagrant_env: dict[str, str],
                                                        tmp_path: Path) -> None:
    table = tmp_path / "fleet.json"
    r = in_netns(isolated_netns, [sys.executable, "-c", PROBE, str(REPO), str(table)],
                 {**vagrant_env, "KUBELITE_WORKERS": "3"})
    assert r.returncode == 0, r.stderr
    seen = json.loads(r.stdout)
    names = ["cp1", "cp2", "cp3", "w1", "w2", "w3"]
    assert seen["statuses"] == [[n, "not_created", "libvirt"] for n in names]
    assert seen["ips"] == {"cp1": "192.168.56.11", "cp2": "192.168.56.12",
                           "cp3": "192.168.56.13", "w1": "192.168.56.21",
                           "w2": "192.168.56.22", "w3": "192.168.56.23"}
    assert seen["roles"] == {**dict.fromkeys(names[:3], "control-plane"),
                             **dict.fromkeys(names[3:], "worker")}
    assert seen["error"] == (
        "Vagrant machines not running: " + ", ".join(f"{n} (not_created)" for n in names)
        + f"; run `vagrant up` in {REPO} first")


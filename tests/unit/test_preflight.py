"""Preflight: the probe's output read into facts, clock skew with round-trip correction,
and problems from facts, each naming the machine and the fix."""

from __future__ import annotations

import subprocess
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provisioning import preflight
from provisioning.preflight import Facts

# What the probe printed on a lab machine (Debian 12, root, sshd as PID 1).
LAB_OUTPUT = """\
start 1767225600.100000000
python_path /usr/bin/python3
python 3.11.2
uid 0
arch x86_64
kernel 6.18.44
pid1 sshd
os Debian GNU/Linux 12 (bookworm)
tool ip /usr/sbin/ip
tool nsenter /usr/bin/nsenter
tool nft /usr/sbin/nft
df /var/lib overlay 264212084 25059016 81331896 24% /var
listen 00000000:0016
listen 0100007F:0950
listen 00000000000000000000000000000000:2B0A
end 1767225600.300000000
"""

GIB = 1024**3


def _facts(output: str = LAB_OUTPUT, sent: float = 1767225600.0,
           received: float = 1767225600.5, **kw) -> Facts:
    return preflight.parse_probe(output, sent=sent, received=received, **kw)


def _replace(output: str, key: str, line: str | None) -> str:
    lines = [x for x in output.splitlines() if not x.startswith(key + " ")]
    if line is not None:
        lines.insert(1, line)
    return "\n".join(lines) + "\n"


def test_lab_output_reads_into_facts() -> None:
    f = _facts()
    assert f.error is None
    assert f.python == (3, 11, 2) and f.python_path == "/usr/bin/python3"
    assert (f.uid, f.arch, f.kernel, f.pid1, f.systemd) == (0, "x86_64", "6.18.44", "sshd", False)
    assert f.os_name == "Debian GNU/Linux 12 (bookworm)"
    assert f.tools == {"ip": "/usr/sbin/ip", "nsenter": "/usr/bin/nsenter", "nft": "/usr/sbin/nft"}
    assert f.listening == {22, 2384, 11018}
    assert (f.disk_path, f.disk_mount, f.disk_free_bytes) == ("/var/lib", "/var", 81331896 * 1024)
    assert f.sudo == "unchecked"
    assert preflight.problems("cp1", f, required_ports=[2379, 6443]) == []


def test_clock_skew_excludes_the_probes_own_run_time() -> None:
    # Sent at 0, answer back at 0.5; the remote ran 0.2 s and ended at 100.3 on its
    # clock: that moment lies in [0.2, 0.5] here, so skew = 100.3 - 0.35 ± 0.15.
    skew, uncertainty = preflight.clock_skew(0.0, 0.5, 100.1, 100.3)
    assert skew == pytest.approx(99.95)
    assert uncertainty == pytest.approx(0.15)
    f = _facts()
    assert f.clock_skew == pytest.approx(-0.05, abs=1e-6)
    assert f.skew_uncertainty == pytest.approx(0.15, abs=1e-6)


@given(st.floats(0, 1e9), st.floats(0, 5), st.floats(0, 5), st.floats(-1e4, 1e4))
def test_skew_estimate_is_within_its_uncertainty(sent: float, before: float, after: float,
                                                 true_skew: float) -> None:
    # Any real schedule: the remote stamps at sent+before (start) and just before the
    # answer leaves (end); its clock is ours plus true_skew.
    start_here = sent + before
    end_here = start_here + after
    received = end_here + 0.01
    skew, uncertainty = preflight.clock_skew(sent, received, start_here + true_skew,
                                             end_here + true_skew)
    assert abs(skew - true_skew) <= uncertainty + 1e-5


def test_a_real_local_probe_reads_sanely() -> None:
    script = preflight.probe_script(data_dir="/nonexistent/kubelite/data")
    sent = time.time()
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=60,
                         check=True).stdout
    f = preflight.parse_probe(out, sent=sent, received=time.time())
    assert f.error is None
    assert f.python is not None and f.python >= (3, 11)
    assert f.disk_path == "/" and f.disk_free_bytes is not None and f.disk_free_bytes > 0
    assert f.clock_skew is not None and f.skew_uncertainty is not None
    assert abs(f.clock_skew) <= f.skew_uncertainty + 0.01       # one clock, both sides


def test_every_problem_is_reported_with_its_fix() -> None:
    out = LAB_OUTPUT.replace("python 3.11.2", "python 3.9.2")
    out = _replace(out, "tool nft", None)
    out = out.replace("81331896 24%", "1024 99%")
    out = out.replace("start 1767225600.100000000", "start 1767225610.150000000")
    out = out.replace("end 1767225600.300000000", "end 1767225610.350000000")
    found = preflight.problems("w3", _facts(out), required_ports=[22, 2384, 10250])
    assert len(found) == 6
    assert all(line.startswith("w3: ") for line in found)
    text = "\n".join(found)
    assert "Python 3.9.2 (/usr/bin/python3) is too old; kubelite needs 3.11" in text
    assert "port 22 is already in use" in text and "port 2384 is already in use" in text
    assert "port 10250" not in text
    assert "clock is 10.0 s ahead of this machine's (±0.15 s)" in text and "NTP" in text
    assert "only 0.0 GiB free on /var" in text
    assert "`nft` is missing" in text and "apt-get install nftables" in text


def test_missing_python_and_limits() -> None:
    out = _replace(_replace(LAB_OUTPUT, "python", None), "python_path", None)
    found = preflight.problems("w1", _facts(out), python="python3.12")
    assert found == ["w1: python3.12 is missing — install Python 3.11 or newer "
                     "(Debian/Ubuntu: apt-get install python3), or set the machine's "
                     "`python:` in the inventory"]
    assert preflight.problems("w1", _facts(), min_python=(3, 12))[0].startswith(
        "w1: Python 3.11.2")
    assert preflight.problems("w1", _facts(), min_disk_bytes=100 * GIB)[0].startswith(
        "w1: only 77.6 GiB free on /var")
    behind = LAB_OUTPUT.replace("start 1767225600.1", "start 1767225595.1").replace(
        "end 1767225600.3", "end 1767225595.3")
    assert preflight.problems("w1", _facts(behind))[0].startswith(
        "w1: its clock is 5.0 s behind this machine's (±0.15 s)")
    # Within the uncertainty is not a problem.
    assert preflight.problems("w1", _facts(), max_skew=0.0) == []


def test_sudo_and_non_root_users() -> None:
    as_user = LAB_OUTPUT.replace("uid 0", "uid 1000")
    asked = as_user.replace("end ", "sudo failed\nend ")
    assert _facts(asked, check_sudo=True).sudo == "failed"
    assert _facts(as_user.replace("end ", "sudo ok\nend "), check_sudo=True).sudo == "ok"
    found = preflight.problems("w1", _facts(asked, check_sudo=True), sudo=True, user="vagrant")
    assert found == ["w1: `sudo -n true` failed for vagrant — allow it passwordless sudo "
                     "(a NOPASSWD line in /etc/sudoers.d/) or connect as root"]
    found = preflight.problems("w1", _facts(as_user), user="debian")
    assert found[0].startswith("w1: debian is not root and the inventory does not allow sudo")
    assert preflight.problems("w1", _facts(as_user.replace("end ", "sudo ok\nend "),
                                           check_sudo=True), sudo=True) == []


def test_systemd_is_a_fact_and_only_required_on_request() -> None:
    with_systemd = LAB_OUTPUT.replace("pid1 sshd", "pid1 systemd\nsystemd yes")
    assert _facts(with_systemd).systemd
    assert preflight.problems("w1", _facts(), require_systemd=True) == [
        "w1: systemd is not PID 1 (PID 1 is sshd); services cannot be installed as units "
        "— run without systemd units"]


def test_broken_probes_become_one_problem_each() -> None:
    cut = LAB_OUTPUT.split("tool ip")[0]
    f = _facts(cut)
    assert f.error is not None and "did not run to its end" in f.error
    assert preflight.problems("w2", f) == [f"w2: the preflight probe failed: {f.error}"]
    # A date(1) without %N still gives whole seconds.
    coarse = LAB_OUTPUT.replace(".100000000", ".N").replace(".300000000", ".N")
    assert _facts(coarse, received=1767225601.0).clock_skew == pytest.approx(-0.5)
    bad_clock = LAB_OUTPUT.replace("end 1767225600.300000000", "end garbage")
    assert "clock could not be read" in preflight.problems("w2", _facts(bad_clock))[0]


def test_all_problems_covers_every_machine_in_order() -> None:
    broken = Facts(error="w9: cannot reach 10.0.0.9:22: connection refused")
    facts = {"cp1": _facts(), "w9": broken,
             "w1": _facts(LAB_OUTPUT.replace("uid 0", "uid 1000"))}
    found = preflight.all_problems(facts, {"cp1": [22], "w1": [10250]})
    assert [line.split(":")[0] for line in found] == ["cp1", "w9", "w1"]
    assert "port 22" in found[0]
    assert "is not root" in found[2]
    assert preflight.all_problems({"cp1": _facts()}, [2384]) == [
        "cp1: port 2384 is already in use — stop what listens there (see "
        "`ss -ltnp 'sport = :2384'`) or choose another port in the cluster settings"]

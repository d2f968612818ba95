"""systemd units for a machine's processes (pure rendering), used where systemd runs.

One unit per process, `kubelite-<name>.service`, restarting on failure with a short
back-off as the supervisor does elsewhere. The unit carries the process's
`config_hash` in a comment, so that what a machine runs can be compared with what it
should run by reading the unit file alone (provisioning/remote.py does).
"""

from __future__ import annotations

import shlex

from provisioning.machine_config import ProcessSpec

UNIT_DIR = "/etc/systemd/system"
PREFIX = "kubelite-"
HASH_MARK = "# kubelite-config-hash: "
AFTER = {"apiserver": ["store"], "haproxy": ["apiserver"], "scheduler": ["apiserver"],
         "controller-manager": ["apiserver"]}


def unit_name(process: str) -> str:
    return f"{PREFIX}{process}.service"


def unit_path(process: str) -> str:
    return f"{UNIT_DIR}/{unit_name(process)}"


def _quote(arg: str) -> str:
    """systemd's ExecStart splits like a shell, but `%` and `$` are its own specifiers."""
    return shlex.quote(arg.replace("%", "%%").replace("$", "$$"))


def render_unit(proc: ProcessSpec, log_dir: str) -> str:
    after = " ".join(unit_name(p) for p in AFTER.get(proc.name, ()))
    lines = [
        HASH_MARK + proc.config_hash,
        "[Unit]",
        f"Description=kubelite {proc.name}",
        "After=network-online.target" + (f" {after}" if after else ""),
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=simple",
        "ExecStart=" + " ".join(_quote(a) for a in proc.argv),
    ]
    lines += [f"Environment={_quote(f'{k}={v}')}" for k, v in proc.env]
    lines += [
        "Restart=always",
        "RestartSec=2",
        "KillMode=mixed",
        "TimeoutStopSec=20",
        "LimitNOFILE=1048576",
        f"StandardOutput=append:{log_dir}/{proc.name}.log",
        f"StandardError=append:{log_dir}/{proc.name}.log",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ]
    return "\n".join(lines)


def hash_of(unit_text: str) -> str | None:
    for line in unit_text.splitlines():
        if line.startswith(HASH_MARK):
            return line[len(HASH_MARK):].strip()
    return None

"""Reaching lab machines from the root namespace: TCP through <prefix>-ctl, and SSH.

The lab's machines are reachable only from inside its ctl namespace (the root namespace
has just an `unreachable` route for the lab subnet). Rather than moving the process
there, a `LabAccess` makes each socket on a thread that lives in the ctl namespace
(provisioning.netns.NetnsDialer) and hands it over; paramiko then speaks SSH over it
(`SSHClient.connect(address, sock=...)`) exactly as to a remote host. Host keys are
checked against the known_hosts file the lab wrote, since it generated them.

    with LabAccess(Path(".kubelite-lab")) as lab:
        with lab.ssh("lab-cp1") as client:
            result = run(client, "hostname")
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import paramiko

from provisioning import lab_build, lab_plan, netns
from provisioning.ssh import Result as CommandResult

CONNECT_TIMEOUT = 10.0


def connect_ssh(address: str, *, sock: socket.socket, key_path: str,
                known_hosts: str | None = None, user: str = lab_plan.SSH_USER,
                port: int = lab_plan.SSH_PORT,
                timeout: float = CONNECT_TIMEOUT) -> paramiko.SSHClient:
    """An SSH client speaking over `sock`, a socket already connected to the machine.
    With `known_hosts` the host key must be listed there; without, any key is accepted."""
    client = paramiko.SSHClient()
    if known_hosts is not None:
        client.load_host_keys(known_hosts)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
    else:
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    try:
        client.connect(address, port=port, username=user, sock=sock,
                       pkey=paramiko.Ed25519Key.from_private_key_file(key_path),
                       timeout=timeout, banner_timeout=timeout, auth_timeout=timeout,
                       allow_agent=False, look_for_keys=False)
    except BaseException:
        client.close()
        sock.close()
        raise
    return client


def run(client: paramiko.SSHClient, command: str, timeout: float = 60.0) -> CommandResult:
    """Run `command` through the machine's shell; wait for it and collect its output."""
    _, stdout, stderr = client.exec_command(command, timeout=timeout)
    out = stdout.read().decode(errors="replace")
    err = stderr.read().decode(errors="replace")
    return CommandResult(stdout.channel.recv_exit_status(), out, err)


class LabAccess:
    """Sockets and SSH clients for the machines of the lab recorded in `directory`.

    Close it (or use `with`) before `lab down`: its threads keep the ctl namespace alive.
    """

    def __init__(self, directory: Path, max_workers: int = netns.DEFAULT_WORKERS) -> None:
        state = lab_build.load_state(directory.resolve())
        if state is None:
            raise lab_build.LabError(f"no lab in {directory.resolve()}")
        self.directory = directory.resolve()
        self.plan = lab_build.plan_of(state)
        self.key_path = str(self.directory / lab_build.KEY_FILE)
        self.known_hosts = str(self.directory / lab_build.KNOWN_HOSTS_FILE)
        self.dialer = netns.NetnsDialer(netns.netns_path(self.plan.ctl_netns), max_workers)

    def address(self, machine: str) -> str:
        """A machine's address; an address is returned as given."""
        try:
            return self.plan.machine(machine).address
        except KeyError:
            return machine

    def socket(self, machine: str, port: int, timeout: float = CONNECT_TIMEOUT) -> socket.socket:
        """A blocking TCP socket to a machine's port, made inside the lab."""
        return self.dialer.connect(self.address(machine), port, timeout)

    async def open_connection(self, machine: str, port: int, timeout: float = CONNECT_TIMEOUT
                              ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await self.dialer.open_connection(self.address(machine), port, timeout)

    def ssh(self, machine: str, timeout: float = CONNECT_TIMEOUT) -> paramiko.SSHClient:
        address = self.address(machine)
        sock = self.socket(address, lab_plan.SSH_PORT, timeout)
        return connect_ssh(address, sock=sock, key_path=self.key_path,
                           known_hosts=self.known_hosts, timeout=timeout)

    def close(self) -> None:
        self.dialer.shutdown(wait=True)

    def __enter__(self) -> LabAccess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

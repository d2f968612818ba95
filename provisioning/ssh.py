"""SSH to the fleet's machines (paramiko), with errors an operator can act on.

`connect(target)` opens one `Connection`; `connect_all(targets)` opens many in
parallel threads and returns the good connections and, per machine, what went wrong,
so that every problem is reported at once before anything is changed.

Host keys are checked against the operator's known_hosts (`~/.ssh/known_hosts`, or a
file given, e.g. the one the lab wrote; `/etc/ssh/ssh_known_hosts` is read as well).
A host that is not listed is refused (`HostKeyUnknown`) unless `accept_new` is set, in
which case its key is appended to that known_hosts file, as OpenSSH's
`StrictHostKeyChecking=accept-new` does. A host whose key differs from the listed one
is always refused (`HostKeyMismatch`, naming the file and line): paramiko compares the
keys before any policy is asked, so no flag accepts a changed key silently.

A target with `netns` is dialled from inside that network namespace (the lab's ctl
namespace): the socket is made there by a `provisioning.netns.NetnsDialer` thread and
paramiko speaks SSH over it from here.

Commands run through the remote user's shell; with `sudo` (a non-root user whose
inventory entry says so) they are wrapped as `sudo -n -- sh -c '<command>'`, never
prompting. Files are written with SFTP to a temporary name and renamed into place, so
a reader never sees half a file; with sudo they go through a private temporary file
and `install`. A failed write caused by a full disk says so.
"""

from __future__ import annotations

import base64
import concurrent.futures
import errno
import hashlib
import hmac
import io
import os
import secrets
import select
import shlex
import socket
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

import paramiko
from paramiko.pkey import UnknownKeyType

from provisioning import netns

DEFAULT_KNOWN_HOSTS = Path("~/.ssh/known_hosts")
SYSTEM_KNOWN_HOSTS = Path("/etc/ssh/ssh_known_hosts")
CONNECT_TIMEOUT = 10.0
COMMAND_TIMEOUT = 120.0
KEEPALIVE = 15            # seconds between keepalives, so a dead peer is noticed
POLL = 1.0                # longest wait between checks of a running command
DEFAULT_PARALLEL = 10
_known_hosts_lock = threading.Lock()   # appends from parallel connects


# --- errors -----------------------------------------------------------------------------


class SshError(Exception):
    """Something about one machine; str() is the operator-facing message."""

    def __init__(self, machine: str, message: str) -> None:
        super().__init__(message)
        self.machine = machine


class Unreachable(SshError):
    """No TCP connection: the machine is down, sshd is not running, or no route."""


class AuthFailed(SshError):
    """The server refused our key."""


class KeyProblem(SshError):
    """Our private key cannot be used: missing, unreadable, passphrase-protected."""


class HostKeyUnknown(SshError):
    """The machine's host key is not in known_hosts (and accept_new is off)."""


class HostKeyMismatch(SshError):
    """The machine's host key differs from the one known_hosts lists."""


class HandshakeFailed(SshError):
    """TCP worked but SSH did not (not an SSH server, or it hung up)."""


class CommandFailed(SshError):
    """A command run with check=True exited non-zero."""

    def __init__(self, machine: str, message: str, result: Result) -> None:
        super().__init__(machine, message)
        self.result = result


class CommandTimeout(SshError):
    """A command did not finish in time; its channel was closed."""


class TransferFailed(SshError):
    """A file could not be written or read on the machine."""


class ConnectionLost(SshError):
    """The SSH connection broke while in use."""


# --- targets ----------------------------------------------------------------------------


class MachineLike(Protocol):
    """What a target is made from (inventory machines have these fields)."""

    @property
    def name(self) -> str: ...

    @property
    def address(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def user(self) -> str: ...

    @property
    def key(self) -> str | None: ...

    @property
    def sudo(self) -> bool: ...


@dataclass(frozen=True)
class SshTarget:
    name: str
    address: str
    port: int = 22
    user: str = "root"
    key_path: str | None = None      # None: ssh-agent and ~/.ssh/id_*
    sudo: bool = False
    netns: str | None = None         # dial from inside this network namespace

    @classmethod
    def from_machine(cls, machine: MachineLike, netns: str | None = None) -> SshTarget:
        return cls(machine.name, machine.address, machine.port, machine.user, machine.key,
                   machine.sudo, netns)

    @property
    def where(self) -> str:
        return f"{self.address}:{self.port}"

    @property
    def needs_sudo(self) -> bool:
        return self.sudo and self.user != "root"

    @property
    def host_key_name(self) -> str:
        """How known_hosts names this host (OpenSSH's rule: [addr]:port off port 22)."""
        return self.address if self.port == 22 else f"[{self.address}]:{self.port}"


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.code == 0


# --- known_hosts (pure) -----------------------------------------------------------------


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's `SHA256:<base64>` fingerprint, as `ssh-keygen -lf` prints it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _host_matches(pattern: str, host: str) -> bool:
    if pattern.startswith("|1|"):
        try:
            salt_b64, hash_b64 = pattern[3:].split("|", 1)
            salt = base64.b64decode(salt_b64)
            want = base64.b64decode(hash_b64)
        except ValueError:
            return False
        return hmac.compare_digest(hmac.new(salt, host.encode(), hashlib.sha1).digest(), want)
    return pattern == host


def known_host_lines(text: str, host: str) -> list[int]:
    """1-based numbers of the known_hosts lines that list `host` (plain or hashed)."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if fields[0].startswith("@"):          # @cert-authority / @revoked
            fields = fields[1:]
        if fields and any(_host_matches(p, host) for p in fields[0].split(",")):
            found.append(number)
    return found


def known_hosts_line(host: str, key: paramiko.PKey) -> str:
    return f"{host} {key.get_name()} {key.get_base64()}\n"


# --- host key policies ------------------------------------------------------------------


class _RefuseUnknown(paramiko.MissingHostKeyPolicy):
    def __init__(self, target: SshTarget, known_hosts: Path) -> None:
        self.target, self.known_hosts = target, known_hosts

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str,
                         key: paramiko.PKey) -> None:
        t = self.target
        raise HostKeyUnknown(
            t.name, f"{t.name} ({t.where}): its host key ({key.get_name()} {fingerprint(key)}) "
            f"is not in {self.known_hosts}; check that fingerprint on the machine "
            f"(ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub) and rerun with "
            f"--accept-new-host-keys to record it")


class _AcceptNew(paramiko.MissingHostKeyPolicy):
    """Record a key for a host known_hosts does not list at all (never a changed one:
    paramiko raises BadHostKeyException before asking a policy)."""

    def __init__(self, known_hosts: Path) -> None:
        self.known_hosts = known_hosts

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str,
                         key: paramiko.PKey) -> None:
        with _known_hosts_lock:
            self.known_hosts.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.known_hosts, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a") as f:
                f.write(known_hosts_line(hostname, key))
        client.get_host_keys().add(hostname, key.get_name(), key)


def _mismatch(target: SshTarget, known_hosts: Path, exc: paramiko.BadHostKeyException
              ) -> HostKeyMismatch:
    where = str(known_hosts)
    for path in (known_hosts, SYSTEM_KNOWN_HOSTS):
        try:
            lines = known_host_lines(path.read_text(errors="replace"), target.host_key_name)
        except OSError:
            continue
        if lines:
            where = f"{path} line {lines[0]}"
            break
    return HostKeyMismatch(
        target.name,
        f"{target.name} ({target.where}): HOST KEY CHANGED: it offered "
        f"{exc.key.get_name()} {fingerprint(exc.key)} but {where} expects "
        f"{exc.expected_key.get_name()} {fingerprint(exc.expected_key)}. Someone may be "
        f"intercepting the connection, or the machine was reinstalled. Only if you know it "
        f"was reinstalled: ssh-keygen -f {known_hosts} -R '{target.host_key_name}' and rerun "
        f"with --accept-new-host-keys")


# --- connecting -------------------------------------------------------------------------


def _load_key(target: SshTarget) -> paramiko.PKey | None:
    if target.key_path is None:
        return None
    path = Path(target.key_path).expanduser()
    fix = "set the machine's `key:` in the inventory to a readable private key"
    try:
        return paramiko.PKey.from_path(path)
    except FileNotFoundError:
        raise KeyProblem(target.name, f"{target.name}: the SSH key {path} does not "
                                      f"exist; {fix}") from None
    except PermissionError:
        raise KeyProblem(target.name, f"{target.name}: the SSH key {path} cannot be read "
                                      f"(permissions); {fix}") from None
    except (paramiko.PasswordRequiredException, TypeError):
        raise KeyProblem(target.name, f"{target.name}: the SSH key {path} is protected by a "
                                      "passphrase; add it to ssh-agent and leave `key:` "
                                      "empty") from None
    except (paramiko.SSHException, ValueError, UnknownKeyType) as exc:
        raise KeyProblem(target.name, f"{target.name}: {path} is not a private key "
                                      f"paramiko can use ({exc}); {fix}") from None


def _unreachable(target: SshTarget, exc: BaseException) -> Unreachable:
    if isinstance(exc, ConnectionRefusedError):
        why = "connection refused"
    elif isinstance(exc, TimeoutError | socket.timeout):
        why = "timed out"
    elif isinstance(exc, socket.gaierror):
        why = f"cannot resolve {target.address!r}"
    elif isinstance(exc, OSError) and exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        why = "no route to host"
    else:
        why = str(exc) or type(exc).__name__
    return Unreachable(target.name, f"{target.name}: cannot reach {target.where}: {why} — is "
                                    "the machine up and sshd running?")


def _dial(target: SshTarget, timeout: float, dialer: netns.NetnsDialer | None
          ) -> socket.socket:
    try:
        if target.netns is None:
            return socket.create_connection((target.address, target.port), timeout=timeout)
        if dialer is not None:
            return dialer.connect(target.address, target.port, timeout)
        with netns.NetnsDialer(netns.netns_path(target.netns), max_workers=1) as own:
            return own.connect(target.address, target.port, timeout)
    except (netns.NetnsError, PermissionError, concurrent.futures.BrokenExecutor) as exc:
        raise Unreachable(target.name, f"{target.name}: cannot dial from network namespace "
                                       f"{target.netns}: {exc} (is the lab up? dialling "
                                       "from a namespace needs root)") from None
    except OSError as exc:
        raise _unreachable(target, exc) from None


def connect(target: SshTarget, *, known_hosts: Path | None = None, accept_new: bool = False,
            timeout: float = CONNECT_TIMEOUT, dialer: netns.NetnsDialer | None = None
            ) -> Connection:
    """An authenticated connection to `target`, or the SshError saying what to fix.

    `dialer` (a NetnsDialer for target.netns) lets many connects share its threads.
    """
    pkey = _load_key(target)
    known = (known_hosts or DEFAULT_KNOWN_HOSTS).expanduser()
    client = paramiko.SSHClient()
    if SYSTEM_KNOWN_HOSTS.exists():
        client.load_system_host_keys(str(SYSTEM_KNOWN_HOSTS))
    if known.exists():
        client.load_host_keys(str(known))
    client.set_missing_host_key_policy(_AcceptNew(known) if accept_new
                                       else _RefuseUnknown(target, known))
    sock = _dial(target, timeout, dialer)
    try:
        client.connect(target.address, port=target.port, username=target.user, pkey=pkey,
                       sock=sock, timeout=timeout, banner_timeout=timeout,
                       auth_timeout=timeout, channel_timeout=timeout,
                       allow_agent=pkey is None, look_for_keys=pkey is None)
    except SshError:
        _close(client, sock)
        raise
    except paramiko.BadHostKeyException as exc:
        _close(client, sock)
        raise _mismatch(target, known, exc) from None
    except paramiko.AuthenticationException:
        _close(client, sock)
        what = f"the key {target.key_path} was" if target.key_path else \
            "no key (ssh-agent, ~/.ssh/id_*) was"
        raise AuthFailed(target.name, f"{target.user}@{target.name}: {what} refused — is "
                                      f"its public key in {target.user}'s authorized_keys "
                                      f"on {target.name}?") from None
    except (paramiko.SSHException, EOFError, OSError) as exc:
        _close(client, sock)
        if isinstance(exc, OSError) and not isinstance(exc, socket.timeout):
            raise _unreachable(target, exc) from None
        raise HandshakeFailed(target.name, f"{target.name} ({target.where}): the SSH "
                                           f"handshake failed ({exc or type(exc).__name__}) — "
                                           "is an SSH server listening on that port?") from None
    transport = client.get_transport()
    assert transport is not None
    transport.set_keepalive(KEEPALIVE)
    return Connection(target, client)


def _close(client: paramiko.SSHClient, sock: socket.socket) -> None:
    client.close()
    sock.close()


def connect_all(targets: Sequence[SshTarget], *, known_hosts: Path | None = None,
                accept_new: bool = False, timeout: float = CONNECT_TIMEOUT,
                parallel: int = DEFAULT_PARALLEL
                ) -> tuple[dict[str, Connection], dict[str, SshError]]:
    """Connect to every target at once (up to `parallel` at a time); returns the
    connections and the errors, each keyed by machine name in the targets' order."""
    names = [t.name for t in targets]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate machine names among {names}")
    dialers = {ns: netns.NetnsDialer(netns.netns_path(ns), max_workers=parallel)
               for ns in {t.netns for t in targets if t.netns} if netns.exists(ns)}

    def one(target: SshTarget) -> Connection | SshError:
        try:
            return connect(target, known_hosts=known_hosts, accept_new=accept_new,
                           timeout=timeout, dialer=dialers.get(target.netns or ""))
        except SshError as exc:
            return exc
        except Exception as exc:  # report it with the others rather than lose them all
            return SshError(target.name, f"{target.name}: unexpected {type(exc).__name__}: "
                                         f"{exc}")

    try:
        with ThreadPoolExecutor(max_workers=max(1, parallel),
                                thread_name_prefix="ssh-connect") as pool:
            outcomes = list(pool.map(one, targets))
    finally:
        for dialer in dialers.values():
            dialer.shutdown(wait=True)
    connections = {t.name: o for t, o in zip(targets, outcomes, strict=True)
                   if isinstance(o, Connection)}
    errors = {t.name: o for t, o in zip(targets, outcomes, strict=True)
              if isinstance(o, SshError)}
    return connections, errors


def close_all(connections: Iterable[Connection]) -> None:
    for c in connections:
        c.close()


# --- a connection -----------------------------------------------------------------------


def sudo_wrap(command: str) -> str:
    """`command` run as root through sudo, never waiting for a password."""
    return f"sudo -n -- sh -c {shlex.quote(command)}"


class Connection:
    """One SSH connection to one machine: run commands, put and get files."""

    def __init__(self, target: SshTarget, client: paramiko.SSHClient) -> None:
        self.target = target
        self.client = client
        self._sftp: paramiko.SFTPClient | None = None

    @property
    def name(self) -> str:
        return self.target.name

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        t = self.target
        return f"Connection({t.user}@{t.name} {t.where})"

    def close(self) -> None:
        if self._sftp is not None:
            self._sftp.close()
            self._sftp = None
        self.client.close()

    # commands

    def run(self, command: str, *, check: bool = False, timeout: float = COMMAND_TIMEOUT,
            sudo: bool | None = None, input: bytes | None = None) -> Result:
        """Run `command` through the remote shell; wait at most `timeout` seconds.

        `sudo=None` uses sudo when the target needs it. With `check`, a non-zero exit
        raises CommandFailed carrying the result.
        """
        if sudo is None:
            sudo = self.target.needs_sudo
        wrapped = sudo_wrap(command) if sudo else command
        code, out, err = self.exec_bytes(wrapped, timeout=timeout, input=input,
                                         shown=command)
        result = Result(code, out.decode(errors="replace"), err.decode(errors="replace"))
        if check and not result.ok:
            tail = result.stderr.strip().splitlines()[-5:]
            hint = ""
            if sudo and "password" in result.stderr:
                hint = (f"; {self.target.user} needs passwordless sudo (NOPASSWD) on "
                        f"{self.name}")
            raise CommandFailed(self.name, f"{self.name}: `{_short(command)}` exited "
                                           f"{code}: {' | '.join(tail) or '(no output)'}{hint}",
                                result)
        return result

    def exec_bytes(self, command: str, *, timeout: float = COMMAND_TIMEOUT,
                   input: bytes | None = None, shown: str | None = None
                   ) -> tuple[int, bytes, bytes]:
        """(exit code, stdout, stderr) of `command` exactly as given (no sudo added).

        Reads stdout and stderr as they come, so a command that writes much to either
        never stalls on a full window.
        """
        deadline = time.monotonic() + timeout
        try:
            transport = self.client.get_transport()
            if transport is None or not transport.is_active():
                raise ConnectionLost(self.name, f"{self.name}: the SSH connection is closed")
            chan = transport.open_session(timeout=timeout)
        except SshError:
            raise
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise self._lost(exc) from None
        try:
            chan.exec_command(command)
            if input:
                chan.sendall(input)
            chan.shutdown_write()
            return self._collect(chan, deadline, shown or command, timeout)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise self._lost(exc) from None
        finally:
            chan.close()

    def _collect(self, chan: paramiko.Channel, deadline: float, shown: str,
                 timeout: float) -> tuple[int, bytes, bytes]:
        out, err = bytearray(), bytearray()
        while True:
            while chan.recv_ready():
                out += chan.recv(65536)
            while chan.recv_stderr_ready():
                err += chan.recv_stderr(65536)
            if chan.exit_status_ready() and (chan.eof_received or chan.closed) \
                    and not chan.recv_ready() and not chan.recv_stderr_ready():
                code = chan.recv_exit_status()
                # -1: no exit status came, the channel just closed (killed by a signal,
                # or the connection itself went away).
                if code == -1 and not chan.get_transport().is_active():
                    raise ConnectionLost(self.name, f"{self.name}: the connection closed "
                                                    f"while `{_short(shown)}` ran")
                return code, bytes(out), bytes(err)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CommandTimeout(self.name, f"{self.name}: `{_short(shown)}` did not "
                                                f"finish within {timeout:g} s")
            select.select([chan], [], [], min(remaining, POLL))

    def _lost(self, exc: BaseException) -> ConnectionLost:
        return ConnectionLost(self.name, f"{self.name}: the SSH connection broke "
                                         f"({exc or type(exc).__name__}); is the machine "
                                         "still up?")

    # files

    def sftp(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            try:
                self._sftp = self.client.open_sftp()
            except (paramiko.SSHException, EOFError, OSError) as exc:
                raise TransferFailed(self.name, f"{self.name}: SFTP is not available "
                                                f"({exc}); enable sshd's sftp subsystem"
                                     ) from None
        return self._sftp

    def put(self, source: str | Path | bytes, remote_path: str, mode: int = 0o644, *,
            sudo: bool | None = None) -> None:
        """Write a local file (or bytes) to `remote_path` with `mode`, atomically;
        parent directories are created."""
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        if sudo is None:
            sudo = self.target.needs_sudo
        remote = PurePosixPath(remote_path)
        if sudo:
            self._put_sudo(data, remote, mode)
            return
        tmp = str(remote.with_name(f".{remote.name}.{secrets.token_hex(4)}.tmp"))
        sftp = self.sftp()
        try:
            try:
                self._upload(sftp, data, tmp)
            except FileNotFoundError:
                self.run(f"mkdir -p {shlex.quote(str(remote.parent))}", check=True,
                         sudo=False)
                self._upload(sftp, data, tmp)
            sftp.chmod(tmp, mode)
            sftp.posix_rename(tmp, str(remote))
        except OSError as exc:
            self._discard(sftp, tmp)
            raise self._write_failed(remote, len(data), exc) from None

    def _upload(self, sftp: paramiko.SFTPClient, data: bytes, path: str,
                mode: int | None = None) -> None:
        """Write with pipelined requests, then check the size: paramiko drops the
        status of pipelined writes, so a full disk would otherwise pass unnoticed."""
        with sftp.open(path, "wb") as f:
            if mode is not None:
                f.chmod(mode)
            f.set_pipelined(True)
            f.write(data)
        written = sftp.stat(path).st_size
        if written != len(data):
            raise OSError(errno.EIO, f"only {written} of {len(data)} bytes were written")

    def _discard(self, sftp: paramiko.SFTPClient, path: str) -> None:
        try:
            sftp.remove(path)
        except OSError:
            pass

    def _put_sudo(self, data: bytes, remote: PurePosixPath, mode: int) -> None:
        sftp = self.sftp()
        tmp = f"/tmp/.kubelite-put-{secrets.token_hex(8)}"
        try:
            self._upload(sftp, data, tmp, mode=0o600)
        except OSError as exc:
            self._discard(sftp, tmp)
            raise self._write_failed(PurePosixPath(tmp), len(data), exc) from None
        q = shlex.quote
        new = q(str(remote.with_name(f".{remote.name}.new")))
        script = (f"mkdir -p {q(str(remote.parent))} && install -m {mode:o} {q(tmp)} {new} "
                  f"&& mv -f {new} {q(str(remote))}; rc=$?; rm -f {q(tmp)}; exit $rc")
        result = self.run(script, sudo=True)
        if not result.ok:
            raise self._write_failed(remote, len(data), OSError(result.stderr.strip()))

    def _write_failed(self, remote: PurePosixPath, size: int, exc: OSError) -> TransferFailed:
        """Say why a write failed; check the filesystem when the reason is vague (an
        SFTP server reports a full disk as a bare "Failure")."""
        why = str(exc) or type(exc).__name__
        hint = ""
        free = self.free_bytes(str(remote.parent))
        if (free is not None and free < size) or "No space" in why:
            space = "" if free is None else f" ({free} bytes free, {size} needed)"
            hint = (f"; the filesystem holding {remote.parent} is full{space}: free space "
                    f"on {self.name} and retry")
        return TransferFailed(self.name, f"{self.name}: writing {remote} failed: {why}{hint}")

    def free_bytes(self, path: str) -> int | None:
        """Bytes available on the filesystem holding `path` (or its nearest existing
        parent), or None if that cannot be told."""
        script = (f"d={shlex.quote(path)}; n=0; while [ ! -e \"$d\" ] && [ $n -lt 64 ]; do "
                  "d=$(dirname \"$d\"); n=$((n+1)); done; df -Pk \"$d\" | tail -n 1")
        try:
            result = self.run(script, sudo=False, timeout=30.0)
        except SshError:
            return None
        fields = result.stdout.split()
        if not result.ok or len(fields) < 4 or not fields[3].isdigit():
            return None
        return int(fields[3]) * 1024

    def get(self, remote_path: str, local_path: str | Path | None = None, *,
            sudo: bool | None = None) -> bytes:
        """The remote file's bytes; also written to `local_path` (0600) when given."""
        if sudo is None:
            sudo = self.target.needs_sudo
        if sudo:
            code, out, err = self.exec_bytes(sudo_wrap(f"cat {shlex.quote(remote_path)}"))
            if code != 0:
                raise TransferFailed(self.name, f"{self.name}: reading {remote_path} failed: "
                                                f"{err.decode(errors='replace').strip()}")
            data = out
        else:
            buffer = io.BytesIO()
            try:
                self.sftp().getfo(remote_path, buffer)
            except FileNotFoundError:
                raise TransferFailed(self.name, f"{self.name}: {remote_path} does not "
                                                "exist") from None
            except OSError as exc:
                raise TransferFailed(self.name, f"{self.name}: reading {remote_path} failed: "
                                                f"{exc}") from None
            data = buffer.getvalue()
        if local_path is not None:
            path = Path(local_path)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        return data


def _short(command: str, limit: int = 80) -> str:
    line = " ".join(command.split())
    return line if len(line) <= limit else line[:limit - 1] + "…"


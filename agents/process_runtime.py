"""ProcessRuntime: containers as plain processes that outlive the agent.

Each container attempt runs as a small chain, in a process group of its own (setsid):

    /bin/sh shim.sh --waits for--> python -I -S init.py --execve--> the command

- The shim (`shim.sh` in the state directory) is a few lines of `sh` that stay for the
  container's life. It runs the command, writes its exit status to `<state>/<id>/exit`,
  closes its copies of stdout and stderr, writes the status to a "status" pipe the agent
  watches, and then lingers (`exec sleep infinity`) until the agent kills it. It traps
  TERM, INT, HUP and QUIT (trapped signals are reset to their defaults in the command),
  so a stop's SIGTERM to the group ends the command and the shim still records how.
  The exit file is how exit codes survive an agent restart: a re-adopted container is
  not the new agent's child, so waitpid cannot tell. Only a SIGKILL of the whole group
  while no agent watches leaves no record; that container is reported as exit 137,
  reason "Unknown". The shim lives outside the container's cgroups, as containerd's
  shim does, so an OOM kill or the cleanup of leftovers spares it.
- The init step (`init.py` in the state directory, run by the agent's own interpreter
  in isolated mode) reads the container's spec (`<state>/<id>/spec.json`), writes its
  own PID into the container's cgroups, enters the network namespace (setns), closes
  the shim's descriptors, restores SIGPIPE/SIGXFSZ and execs the command with exactly
  the configured environment. So nothing runs unlimited, no shell touches the
  environment (sh would drop names like `my.var` and add PWD), and argv[0] stays as
  given. It reports to start() through a FIFO (`<state>/<id>/started`) that it opens
  close-on-exec: its PID, then either nothing (a successful exec closes the FIFO) or
  the reason it failed. So start() raises StartError for every failure to run the
  command (the common ones, such as a command not found, are caught even before the
  process is spawned), and `ContainerStatus.pid` is the command's own PID.

Exits: the status pipe says the command ended; the agent then SIGKILLs what is left of
the container (its process group, lingering shim included, and every member of its
cgroups), as a container's processes die with its init. A pidfd (`os.pidfd_open` +
`loop.add_reader`; it works for the agent's children and for re-adopted processes alike)
says when the shim is gone; children are reaped for their wait status. Then the last
output is read and the exit is recorded and published.

Logs: stdout and stderr are pipes that the runtime reads and writes as CRI records
(`agents.container_logs.LogWriter`). The read ends of the pipes are also handed to the
shim, which keeps them open, so the pipes never lose their last reader when the agent
dies (no SIGPIPE for the container): the container's writes block once a pipe's buffer
(raised to 1 MiB) is full and go on when a new agent runs `recover()`, which re-opens
`/proc/<shim>/fd/<n>` (checking each pipe's inode) and pumps again. A container that
ends while no agent runs leaves its shim lingering with the pipes, so its last output
is still read when the agent comes back. What an agent that is killed loses is only an
unfinished line it was holding back (for at most PARTIAL_FLUSH_SECONDS).

State: one directory per container under `state_dir` holding `state.json` (written
atomically: temporary file and rename, see agents/state_files.py), `spec.json` (what the init step needs,
including the environment; mode 0600, as containerd keeps its bundle), and the shim's
`exit` file. `recover()` re-adopts a live shim only if its PID and create time (psutil)
both match, so a reused PID is never mistaken for a container.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
import psutil

from agents import cgroups, state_files
from agents.container_logs import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_FILES,
    STDERR,
    STDOUT,
    LogWriter,
)
from agents.runtime import (
    EXITED,
    RUNNING,
    UNKNOWN_EXIT_CODE,
    UNKNOWN_REASON,
    ContainerConfig,
    ContainerNotExited,
    ContainerNotFound,
    ContainerNotRunning,
    ContainerStatus,
    StartError,
    exit_reason,
)

log = logging.getLogger(__name__)

VERSION = "0.1.0"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SHELL = "/bin/sh"
EXEC_OUTPUT_CAP = 64 * 1024
PIPE_SIZE = 1024 * 1024
READ_SIZE = 64 * 1024
READS_PER_WAKEUP = 16  # then give other containers a turn
START_TIMEOUT = 30.0  # for the init step to exec the command (an interpreter start)
DRAIN_SECONDS = 2.0  # after an exit, for the last output to arrive (EOF)
PARTIAL_FLUSH_SECONDS = 0.2  # an unfinished line is written (as P) after this long
KILL_WAIT_SECONDS = 30.0  # after SIGKILL, before stop() gives up
CLOSE_WAIT_SECONDS = DRAIN_SECONDS + 1.0
CGROUP_REMOVE_TRIES = 50
CGROUP_REMOVE_PAUSE = 0.02
CREATE_TIME_SLACK = 0.05
STATUS = "status"  # the status pipe, among a record's pipes

# sh shim.sh <exit file> <status pipe fd> <sleep or ""> <command...>. The status pipe is
# reached through /proc/self/fd, as sh only names descriptors 0-9.
_SHIM = """\
exit_file=$1 status_fd=$2 sleep=$3
shift 3
trap : HUP INT QUIT TERM
"$@"
code=$?
echo "$code" > "$exit_file"
exec >&- 2>&-
echo "$code" > "/proc/self/fd/$status_fd"
[ -n "$sleep" ] && exec "$sleep" infinity
exit "$code"
"""

# python -I -S init.py <spec.json> [<path> <argv...>, to exec into a running container]
_INIT = r"""
import json, os, signal, sys
exec_mode = len(sys.argv) > 2
report = None
name = "?"

def fail(text):
    data = text.encode(errors="replace") + b"\n"
    try:
        os.write(2, data)
        if report is not None:
            os.write(report, b"error " + data)
    finally:
        os._exit(128)

try:
    with open(sys.argv[1], "rb") as f:
        spec = json.load(f)
    if not exec_mode:
        try:  # start() waits on it: a successful exec closes it, a failure is told
            report = os.open(spec["started"], os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            pass
    path, argv = (sys.argv[2], sys.argv[3:]) if exec_mode else (spec["path"], spec["argv"])
    name = argv[0]
    me = str(os.getpid()).encode()
    for procs in spec["cgroup_procs"]:
        fd = os.open(procs, os.O_WRONLY)
        try:
            os.write(fd, me)
        finally:
            os.close(fd)
    if spec["netns_path"]:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        ns = os.open(spec["netns_path"], os.O_RDONLY | os.O_CLOEXEC)
        if libc.setns(ns, 0x40000000) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), spec["netns_path"])
        os.close(ns)
    if not exec_mode:
        for fd in spec["close_fds"]:
            try:
                os.close(fd)
            except OSError:
                pass
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(sig, signal.SIG_DFL)
    if report is not None:
        os.write(report, b"pid " + me + b"\n")
except BaseException as err:
    fail("container init failed: %s" % (err,))
try:
    os.execve(path, argv, spec["env"])
except OSError as err:
    fail('exec: "%s": %s' % (name, (err.strerror or str(err)).lower()))
except BaseException as err:
    fail('exec: "%s": %s' % (name, err))
"""

# Children this Python process spawned, until reaped. A runtime made later in the same
# process (after close(), as a restart) still reaps them, and no Popen is collected
# while its child runs.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def container_id(pod_uid: str, name: str, attempt: int) -> str:
    """Deterministic, so starting the same attempt twice is caught."""
    return hashlib.sha256(f"{pod_uid}/{name}/{attempt}".encode()).hexdigest()[:32]


# --- checks before spawning -------------------------------------------------------------

def _not_executable(path: str) -> str | None:
    """Why execve(path) would fail, in the kernel's words, or None."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return f"stat {path}: no such file or directory"
    if stat.S_ISDIR(st.st_mode):
        return "is a directory"
    if not st.st_mode & 0o111 or not os.access(path, os.X_OK):
        return "permission denied"
    try:
        with open(path, "rb") as f:
            head = f.read(256)
    except OSError:
        return None
    if head.startswith(b"#!"):
        interpreter = head[2:].split(b"\n", 1)[0].strip().split(b" ", 1)[0]
        if not interpreter or not os.path.exists(interpreter):
            return "no such file or directory"
    elif not head.startswith(b"\x7fELF"):
        return "exec format error"
    return None


def resolve_command(name: str, search_path: str, cwd: str) -> str:
    """argv[0] as execve will run it: searched in PATH unless it holds a slash."""
    if "/" in name:
        candidate = os.path.join(cwd, name)
        if (problem := _not_executable(candidate)) is not None:
            raise StartError(f'exec: "{name}": {problem}')
        return candidate
    if name:
        for directory in search_path.split(":"):
            candidate = os.path.join(cwd, directory or ".", name)
            if _not_executable(candidate) is None:
                return candidate
    raise StartError(f'exec: "{name}": executable file not found in $PATH')


def _check_working_dir(path: str) -> None:
    problem = ("not an absolute path" if not os.path.isabs(path) else
               "no such file or directory" if not os.path.exists(path) else
               "not a directory" if not os.path.isdir(path) else None)
    if problem:
        raise StartError(f'chdir to cwd ("{path}") failed: {problem}')


# --- state ------------------------------------------------------------------------------

@dataclass
class _Record:
    """What survives the agent: one container's state.json."""

    id: str
    pod_uid: str
    namespace: str
    pod_name: str
    name: str
    attempt: int
    image: str
    labels: dict[str, str]
    log_dir: str
    netns_path: str | None
    working_dir: str
    cgroup_version: int
    cgroups: dict[str, str]
    shim_pid: int | None = None
    shim_create_time: float | None = None
    pid: int | None = None  # the command's
    # stdout, stderr, STATUS: [the fd number of its read end in the shim, pipe inode]
    pipes: dict[str, list[int]] = field(default_factory=dict)
    state: str = RUNNING
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    reason: str | None = None
    message: str | None = None

    def status(self) -> ContainerStatus:
        return ContainerStatus(
            id=self.id, pod_uid=self.pod_uid, name=self.name, attempt=self.attempt,
            state=self.state, pid=self.pid, started_at=self.started_at,
            finished_at=self.finished_at, exit_code=self.exit_code, reason=self.reason,
            message=self.message, image=self.image)

    def cgroup_dirs(self) -> dict[str, Path]:
        return {key: Path(path) for key, path in self.cgroups.items()}


def _write_atomic(path: Path, data: bytes) -> None:
    state_files.write_atomic(path, data)


@dataclass(eq=False)
class _Container:
    """A container as this agent watches it."""

    record: _Record
    dir: Path
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    drained: asyncio.Event = field(default_factory=asyncio.Event)
    writer: LogWriter | None = None
    pidfd: int | None = None  # the shim's
    pipes: dict[str, int] = field(default_factory=dict)  # stream: our read end
    status_fd: int | None = None  # our read end of the status pipe
    status_code: int | None = None  # what the shim wrote there
    own_child: bool = False  # this Python process spawned the shim (and reaps it)
    ended: bool = False  # the shim is gone: no more signals to its group
    killed: bool = False  # we sent SIGKILL
    flush_timer: asyncio.TimerHandle | None = None  # writes an unfinished line soon

    def save(self) -> None:
        _write_atomic(self.dir / "state.json", orjson.dumps(asdict(self.record)))

    def watched_fds(self) -> list[int]:
        fds = [*self.pipes.values(), self.status_fd, self.pidfd]
        return [fd for fd in fds if fd is not None]


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("%s crashed", task.get_name(), exc_info=task.exception())


def _exit_status(returncode: int) -> int:
    """A shell's view of a wait status: a signal's death is 128 + its number."""
    return returncode if returncode >= 0 else 128 - returncode


def _reopen(pid: int, fd_number: int, inode: int) -> int:
    """Our own read end of a pipe another process holds (checked by inode)."""
    fd = os.open(f"/proc/{pid}/fd/{fd_number}", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    if os.fstat(fd).st_ino != inode:
        os.close(fd)
        raise OSError(errno.ESTALE, f"fd {fd_number} of {pid} is another file now")
    return fd


# --- the runtime ------------------------------------------------------------------------

class ProcessRuntime:
    """Runs containers as processes; see the module docstring for the design."""

    name = "process"
    version = VERSION

    def __init__(self, state_dir: Path, *, cgroup_root: str = "kubelite",
                 log_max_bytes: int = DEFAULT_MAX_BYTES,
                 log_max_files: int = DEFAULT_MAX_FILES,
                 cgroup_under_self: bool = False) -> None:
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.cgroups = cgroups.detect(cgroup_root, under_self=cgroup_under_self)
        self.limits = self.cgroups.limits
        self.log_max_bytes = log_max_bytes
        self.log_max_files = log_max_files
        self._sleep = shutil.which("sleep", path=DEFAULT_PATH) or ""
        # Files, so that `ps` shows short command lines; replaced atomically, so a
        # running shim (sh reads its script as it goes) keeps the version it started with.
        self._shim_path, self._init_path = self.state_dir / "shim.sh", self.state_dir / "init.py"
        for path, text in ((self._shim_path, _SHIM), (self._init_path, _INIT)):
            if not path.exists() or path.read_text() != text:
                _write_atomic(path, text.encode())
        self._containers: dict[str, _Container] = {}
        self._subscribers: list[asyncio.Queue[ContainerStatus]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    # --- reads ------------------------------------------------------------------------

    def status(self, container_id: str) -> ContainerStatus | None:
        container = self._containers.get(container_id)
        return container.record.status() if container else None

    def list(self, pod_uid: str | None = None) -> list[ContainerStatus]:
        return [c.record.status() for c in self._containers.values()
                if pod_uid is None or c.record.pod_uid == pod_uid]

    def subscribe(self) -> asyncio.Queue[ContainerStatus]:
        queue: asyncio.Queue[ContainerStatus] = asyncio.Queue()
        self._subscribers.append(queue)
        return queue

    def _publish(self, container: _Container) -> None:
        for queue in self._subscribers:
            queue.put_nowait(container.record.status())

    def _get(self, container_id: str) -> _Container:
        container = self._containers.get(container_id)
        if container is None:
            raise ContainerNotFound(container_id)
        return container

    # --- start --------------------------------------------------------------------------

    async def start(self, config: ContainerConfig) -> ContainerStatus:
        if not config.argv:
            raise StartError("no command specified")
        cid = container_id(config.pod_uid, config.name, config.attempt)
        directory = self.state_dir / cid
        if cid in self._containers or directory.exists():
            raise StartError(f"container {cid} ({config.pod_name}/{config.name} attempt "
                             f"{config.attempt}) already exists")
        env = dict(config.env)
        env.setdefault("PATH", DEFAULT_PATH)
        working_dir = config.working_dir or "/"
        _check_working_dir(working_dir)
        path = resolve_command(config.argv[0], env["PATH"], working_dir)
        if config.netns_path and not os.path.exists(config.netns_path):
            raise StartError(f'failed to open netns "{config.netns_path}": '
                             "no such file or directory")

        directory.mkdir(mode=0o700)
        container: _Container | None = None
        dirs: dict[str, Path] = {}
        fds: list[int] = []
        try:
            if self.cgroups.version:
                try:
                    dirs = cgroups.create(self.cgroups, config.pod_uid,
                                          f"{config.name}-{config.attempt}",
                                          config.cpu_limit_millicores,
                                          config.memory_limit_bytes)
                except (OSError, ValueError) as err:
                    raise StartError(f"failed to create the container's cgroup: {err}") \
                        from err
            container = _Container(_Record(
                id=cid, pod_uid=config.pod_uid, namespace=config.namespace,
                pod_name=config.pod_name, name=config.name, attempt=config.attempt,
                image=config.image, labels=dict(config.labels), log_dir=str(config.log_dir),
                netns_path=config.netns_path, working_dir=working_dir,
                cgroup_version=self.cgroups.version,
                cgroups={key: str(d) for key, d in dirs.items()}), directory, own_child=True)
            container.writer = LogWriter(config.log_dir, config.attempt,
                                         max_bytes=self.log_max_bytes,
                                         max_files=self.log_max_files)
            container.save()  # before the process exists: an agent crash now leaves a trace
            started = directory / "started"
            os.mkfifo(started, 0o600)
            report = os.open(started, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            fds.append(report)
            self._spawn_shim(container, fds, {
                "path": path, "argv": list(config.argv), "env": env, "started": str(started),
                "cgroup_procs": cgroups.procs_files(dirs), "netns_path": config.netns_path})
            container.record.pid = await self._await_exec(container, report)
            os.close(report)
            fds.remove(report)
            started.unlink()
            container.save()
        except BaseException as err:
            await self._abandon(container, dirs, fds, directory)
            if isinstance(err, OSError):
                raise StartError(f"failed to start the container: {err}") from err
            raise
        self._containers[cid] = container
        self._watch(container)
        self._publish(container)
        return container.record.status()

    def _spawn_shim(self, container: _Container, fds: list[int], spec: dict[str, Any]) -> None:
        """Start the shim with its pipes; what is left to close on failure is in `fds`."""
        record, directory = container.record, container.dir
        pipes = {}
        for name in (STDOUT, STDERR, STATUS):
            read_end, write_end = os.pipe()
            fds += [read_end, write_end]
            with contextlib.suppress(OSError):
                fcntl.fcntl(read_end, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
            os.set_blocking(read_end, False)
            pipes[name] = (read_end, write_end)
        shim_fds = [pipes[STDOUT][0], pipes[STDERR][0], *pipes[STATUS]]
        _write_atomic(directory / "spec.json", orjson.dumps({**spec, "close_fds": shim_fds}))
        try:
            child = subprocess.Popen(
                [SHELL, str(self._shim_path), str(directory / "exit"), str(pipes[STATUS][1]),
                 self._sleep, sys.executable, "-I", "-S", str(self._init_path),
                 str(directory / "spec.json")],
                stdin=subprocess.DEVNULL, stdout=pipes[STDOUT][1], stderr=pipes[STDERR][1],
                pass_fds=shim_fds, cwd=record.working_dir, env={}, start_new_session=True)
        except OSError as err:
            raise StartError(f"failed to start the container's shim: {err}") from err
        _CHILDREN[child.pid] = child
        record.shim_pid = child.pid
        for name, (read_end, write_end) in pipes.items():
            os.close(write_end)
            fds.remove(write_end)
            fds.remove(read_end)
            if name == STATUS:
                container.status_fd = read_end
            else:
                container.pipes[name] = read_end
        record.pipes = {name: [r, os.fstat(r).st_ino] for name, (r, _) in pipes.items()}
        record.shim_create_time = psutil.Process(child.pid).create_time()
        record.started_at = time.time()
        container.pidfd = os.pidfd_open(child.pid)

    async def _await_exec(self, container: _Container, report: int) -> int:
        """The command's PID once the init step exec'd it; StartError if it could not."""
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        received = bytearray()

        def on_report() -> None:
            try:
                data = os.read(report, 4096)
            except BlockingIOError:
                return
            received.extend(data)
            if not data and not done.done():
                done.set_result(None)  # closed by the exec, or after the failure was told

        def on_shim_status() -> None:  # the init step died without a word
            if not done.done():
                done.set_result(None)

        assert container.status_fd is not None
        loop.add_reader(report, on_report)
        loop.add_reader(container.status_fd, on_shim_status)
        try:
            await asyncio.wait_for(done, START_TIMEOUT)
        except TimeoutError:
            raise StartError(f"the container's init step did not exec the command within "
                             f"{START_TIMEOUT} s") from None
        finally:
            loop.remove_reader(report)
            loop.remove_reader(container.status_fd)
        with contextlib.suppress(BlockingIOError):
            received.extend(os.read(report, 4096))
        lines = bytes(received).decode(errors="replace").splitlines()
        failure = next((line[6:] for line in lines if line.startswith("error ")), None)
        pid = next((int(line[4:]) for line in lines if line.startswith("pid ")), None)
        if failure is not None or pid is None:
            raise StartError(failure or "the container's init step failed before it reported")
        return pid

    async def _abandon(self, container: _Container | None, dirs: dict[str, Path],
                       fds: list[int], directory: Path) -> None:
        """Undo a start that failed part way: nothing of it is left running."""
        if container is not None:
            if container.record.shim_pid is not None:
                self._kill_leftovers(container, group_pinned=True)
                child = _CHILDREN.pop(container.record.shim_pid, None)
                if child is not None:
                    await asyncio.to_thread(child.wait)
            for fd in container.watched_fds():
                os.close(fd)
            if container.writer is not None:
                container.writer.close()
                with contextlib.suppress(OSError):
                    if container.writer.path.stat().st_size == 0:
                        container.writer.path.unlink()  # a container that never ran
        for fd in fds:
            os.close(fd)
        if dirs:
            await self._remove_cgroups(dirs)
        shutil.rmtree(directory, ignore_errors=True)

    # --- watching -----------------------------------------------------------------------

    def _watch(self, container: _Container) -> None:
        loop = asyncio.get_running_loop()
        for stream, fd in container.pipes.items():
            loop.add_reader(fd, self._pump, container, stream, fd)
        if not container.pipes:
            container.drained.set()
        if container.status_fd is not None:
            loop.add_reader(container.status_fd, self._on_status, container)
        if container.pidfd is not None:
            loop.add_reader(container.pidfd, self._on_exit, container)

    def _unwatch(self, container: _Container) -> None:
        """Stop watching and close our descriptors (the shim keeps its own)."""
        loop = asyncio.get_running_loop()
        for fd in container.watched_fds():
            loop.remove_reader(fd)
            os.close(fd)
        container.pipes.clear()
        container.status_fd = container.pidfd = None
        self._close_writer(container)

    def _pump(self, container: _Container, stream: str, fd: int) -> None:
        for _ in range(READS_PER_WAKEUP):
            try:
                data = os.read(fd, READ_SIZE)
            except BlockingIOError:
                break
            except OSError as err:
                log.warning("container %s: reading %s: %s", container.record.id, stream, err)
                data = b""
            if not data:
                self._close_pipe(container, stream)
                break
            self._write_log(container, lambda w, d=data: w.write(stream, d))
        if container.flush_timer is None and container.writer and container.writer.pending():
            container.flush_timer = asyncio.get_running_loop().call_later(
                PARTIAL_FLUSH_SECONDS, self._flush_partial, container)

    def _write_log(self, container: _Container, write: Callable[[LogWriter], None]) -> None:
        if container.writer is not None:
            try:
                write(container.writer)
            except OSError as err:
                log.warning("container %s: writing its log: %s", container.record.id, err)

    def _flush_partial(self, container: _Container) -> None:
        container.flush_timer = None
        self._write_log(container, LogWriter.flush)

    def _close_writer(self, container: _Container) -> None:
        """Write what is held back and close the log (on exit, or when we stop watching)."""
        if container.flush_timer is not None:
            container.flush_timer.cancel()
            container.flush_timer = None
        self._write_log(container, LogWriter.close)
        container.writer = None

    def _close_pipe(self, container: _Container, stream: str) -> None:
        fd = container.pipes.pop(stream, None)
        if fd is not None:
            asyncio.get_running_loop().remove_reader(fd)
            os.close(fd)
        if not container.pipes:
            container.drained.set()

    def _read_status(self, container: _Container) -> None:
        """Take the shim's word on how the command ended, once it has written it."""
        fd = container.status_fd
        if fd is None:
            return
        try:
            data = os.read(fd, 64)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        asyncio.get_running_loop().remove_reader(fd)
        os.close(fd)
        container.status_fd = None
        with contextlib.suppress(ValueError):
            container.status_code = int(data.strip())

    def _on_status(self, container: _Container) -> None:
        self._read_status(container)
        if container.status_fd is None and container.status_code is not None:
            # The command ended. The shim only lingers to keep the pipes for an agent
            # that is away; it goes now, with whatever the command left behind.
            self._signal_group(container, signal.SIGKILL)

    def _on_exit(self, container: _Container) -> None:
        if container.pidfd is not None:
            asyncio.get_running_loop().remove_reader(container.pidfd)
        task = asyncio.get_running_loop().create_task(
            self._finish(container), name=f"container-exit-{container.record.id[:12]}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_log_crash)

    def _kill_leftovers(self, container: _Container, group_pinned: bool) -> None:
        """SIGKILL the container's process group (only while the shim's PID is ours to
        reap, so that the group cannot be someone else's) and its cgroups' members."""
        record = container.record
        if group_pinned and record.shim_pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(record.shim_pid, signal.SIGKILL)
        for pid in cgroups.member_pids(record.cgroup_dirs()):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    async def _finish(self, container: _Container) -> None:
        """The shim ended: reap it, collect the last output, record how the container
        ended, tell the subscribers."""
        container.ended = True
        record = container.record
        seen_at = time.time()
        shim = record.shim_pid
        child = _CHILDREN.get(shim) if container.own_child and shim is not None else None
        self._kill_leftovers(container, group_pinned=child is not None)
        returncode = None
        if child is not None:
            returncode = child.poll()
            if returncode is None:  # a pidfd turns readable at the exit itself
                returncode = await asyncio.to_thread(child.wait)
            _CHILDREN.pop(child.pid, None)
        if container.pidfd is not None:
            os.close(container.pidfd)
            container.pidfd = None
        self._read_status(container)
        try:
            if container.pipes:
                await asyncio.wait_for(container.drained.wait(), DRAIN_SECONDS)
        except TimeoutError:
            log.warning("container %s: output pipes still open after its exit; closing",
                        record.id)
            for stream, fd in list(container.pipes.items()):
                self._pump(container, stream, fd)
                self._close_pipe(container, stream)
        self._close_writer(container)
        self._record_exit(container, returncode, seen_at)
        container.save()
        container.exited.set()
        self._publish(container)

    def _record_exit(self, container: _Container, returncode: int | None,
                     seen_at: float) -> None:
        """Exit code and reason: the shim's records first (they survive agent restarts),
        then our own wait status, else unknown."""
        record = container.record
        record.state, record.finished_at = EXITED, seen_at
        exit_file = container.dir / "exit"
        code: int | None = None
        with contextlib.suppress(OSError, ValueError):
            code = int(exit_file.read_text().strip())
            record.finished_at = exit_file.stat().st_mtime
        if code is None:
            code = container.status_code
        if code is None and returncode is not None:
            code = _exit_status(returncode)
        if code is None and container.killed:
            code = 128 + signal.SIGKILL
        if code is None:
            record.exit_code, record.reason = UNKNOWN_EXIT_CODE, UNKNOWN_REASON
            record.message = ("the container ended while no agent watched it and its exit "
                              "status was not recorded")
            return
        record.exit_code = code
        record.reason = exit_reason(code, cgroups.oom_killed(record.cgroup_version,
                                                             record.cgroup_dirs()))

    # --- recover ------------------------------------------------------------------------

    async def recover(self) -> list[ContainerStatus]:
        found = []
        for directory in sorted(self.state_dir.iterdir()):
            if directory.name in self._containers or not directory.is_dir():
                continue
            try:
                record = _Record(**orjson.loads((directory / "state.json").read_bytes()))
            except FileNotFoundError:
                continue  # not a container's directory
            except (OSError, ValueError, TypeError) as err:
                log.warning("skipping unreadable container state %s: %s", directory, err)
                continue
            container = _Container(record, directory)
            self._containers[record.id] = container
            if record.state == RUNNING and self._adopt(container):
                self._watch(container)
                if (directory / "exit").exists():
                    # It ended while no agent ran; its shim kept the pipes for us.
                    self._signal_group(container, signal.SIGKILL)
            elif record.state == RUNNING:
                await self._finish(container)
            found.append(record.status())
        return found

    def _adopt(self, container: _Container) -> bool:
        """Watch a live container again: its shim's pidfd, its pipes, its log file.
        False if the shim is gone (or its PID now belongs to another process)."""
        record = container.record
        if record.shim_pid is None:
            return False
        try:
            pidfd = os.pidfd_open(record.shim_pid)
        except ProcessLookupError:
            return False
        try:
            # Checked after opening the pidfd, which pins the process being checked.
            shim = psutil.Process(record.shim_pid)
            same = abs(shim.create_time() - (record.shim_create_time or 0)) < CREATE_TIME_SLACK
            alive = same and shim.status() != psutil.STATUS_ZOMBIE
            if alive and record.pid is None:  # the last agent died while it started
                record.pid = next((c.pid for c in shim.children()), None)
        except psutil.Error:
            same = alive = False
        container.own_child = same and record.shim_pid in _CHILDREN
        if same:  # alive, or exited but not yet reaped: _finish sees that as usual
            container.pidfd = pidfd
        else:
            os.close(pidfd)
        if not alive:
            return False
        for stream, (fd_number, inode) in record.pipes.items():
            try:
                fd = _reopen(record.shim_pid, fd_number, inode)
            except OSError as err:
                log.warning("container %s: cannot reopen its %s: %s", record.id, stream, err)
                continue
            if stream == STATUS:
                container.status_fd = fd
            else:
                container.pipes[stream] = fd
        container.writer = LogWriter(Path(record.log_dir), record.attempt,
                                     max_bytes=self.log_max_bytes,
                                     max_files=self.log_max_files)
        return True

    # --- stop, remove -------------------------------------------------------------------

    def _signal_group(self, container: _Container, sig: int) -> None:
        if container.ended or container.record.shim_pid is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(container.record.shim_pid, sig)

    async def stop(self, container_id: str, grace_seconds: float) -> ContainerStatus:
        container = self._get(container_id)
        if container.record.state == RUNNING and grace_seconds > 0:
            self._signal_group(container, signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(container.exited.wait(), grace_seconds)
        if container.record.state == RUNNING:
            container.killed = container.killed or not container.ended
            self._signal_group(container, signal.SIGKILL)
            try:
                await asyncio.wait_for(container.exited.wait(), KILL_WAIT_SECONDS)
            except TimeoutError:
                raise TimeoutError(f"container {container_id} did not exit within "
                                   f"{KILL_WAIT_SECONDS} s of SIGKILL") from None
        return container.record.status()

    async def _remove_cgroups(self, dirs: dict[str, Path]) -> None:
        """rmdir, retrying while the kernel lets go of exited members (bounded)."""
        for _ in range(CGROUP_REMOVE_TRIES):
            try:
                cgroups.remove(dirs.values())
                return
            except OSError as err:
                if err.errno != errno.EBUSY:
                    raise
            for pid in cgroups.member_pids(dirs):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            await asyncio.sleep(CGROUP_REMOVE_PAUSE)
        cgroups.remove(dirs.values())

    async def remove(self, container_id: str) -> None:
        container = self._get(container_id)
        if container.record.state == RUNNING:
            raise ContainerNotExited(f"container {container_id} is running; stop it first")
        await self._remove_cgroups(container.record.cgroup_dirs())
        shutil.rmtree(container.dir, ignore_errors=True)
        del self._containers[container_id]

    # --- exec --------------------------------------------------------------------------

    async def exec(self, container_id: str, argv: list[str],
                   timeout: float) -> tuple[int, bytes]:
        """Run argv in the container's netns, cgroups, environment and working dir.

        A command that cannot be found raises StartError, as start() does. Output past
        EXEC_OUTPUT_CAP is read and dropped, so the command never blocks on it.
        """
        container = self._get(container_id)
        record = container.record
        if record.state != RUNNING:
            raise ContainerNotRunning(f"container {container_id} is not running")
        if not argv:
            raise StartError("no command specified")
        spec_path = container.dir / "spec.json"
        spec = orjson.loads(spec_path.read_bytes())
        path = resolve_command(argv[0], spec["env"].get("PATH", DEFAULT_PATH),
                               record.working_dir)
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-I", "-S", str(self._init_path), str(spec_path), path, *argv,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            cwd=record.working_dir, env={}, start_new_session=True)

        async def collect() -> tuple[int, bytes]:
            assert process.stdout is not None
            output = bytearray()
            while chunk := await process.stdout.read(READ_SIZE):
                output += chunk[:EXEC_OUTPUT_CAP - len(output)]
            return _exit_status(await process.wait()), bytes(output)

        try:
            return await asyncio.wait_for(collect(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), KILL_WAIT_SECONDS)
            raise TimeoutError(f"exec in container {container_id} timed out after "
                               f"{timeout} s") from None

    # --- close -------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop watching. Containers keep running; a new runtime's recover() takes them
        over. Exits already being recorded are finished first (bounded)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=CLOSE_WAIT_SECONDS)
        for task in set(self._tasks):
            task.cancel()
        for container in self._containers.values():
            self._unwatch(container)
        self._containers.clear()

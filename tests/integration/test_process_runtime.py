"""agents.process_runtime against the real kernel: processes, pipes, network namespaces
and cgroups (root).

Every test gets its own state directory and its own cgroup root
(`kubelite-test-<token>`, placed under the test runner's own cgroups so containers stay
inside its limits); the `env` fixture kills whatever a test's containers left running (by
the PIDs in their state files, and the members of its cgroups) and removes the cgroups,
even when the test fails. Network namespaces are created per test and deleted after.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from agents import cgroups, container_logs
from agents.process_runtime import ProcessRuntime
from agents.runtime import (
    ContainerConfig,
    ContainerNotExited,
    ContainerNotRunning,
    ContainerStatus,
    StartError,
)
from tests.privileges import needs_root

pytestmark = needs_root  # cgroups and network namespaces

PY = sys.executable


@dataclass
class Env:
    tmp: Path
    token: str
    bases: set[Path] = field(default_factory=set)

    @property
    def state_dir(self) -> Path:
        return self.tmp / "state"

    @property
    def cgroup_root(self) -> str:
        return f"kubelite-test-{self.token}"

    def runtime(self, **kwargs: Any) -> ProcessRuntime:
        runtime = ProcessRuntime(self.state_dir, cgroup_root=self.cgroup_root,
                                 cgroup_under_self=True, **kwargs)
        self.bases.update(runtime.cgroups.bases.values())
        return runtime

    def config(self, name: str, argv: list[str], **changes: Any) -> ContainerConfig:
        fields: dict[str, Any] = dict(
            pod_uid=f"pod-{self.token}", namespace="default", pod_name="web", name=name,
            attempt=0, argv=argv, env={}, working_dir=None, netns_path=None,
            cpu_limit_millicores=None, memory_limit_bytes=None,
            log_dir=self.tmp / "logs" / name)
        fields.update(changes)
        return ContainerConfig(**fields)


def _kill_recorded(state_dir: Path) -> None:
    """SIGKILL the process group of every shim a state file names, if it is still the
    same process (PID and create time)."""
    for state in state_dir.glob("*/state.json"):
        try:
            record = json.loads(state.read_bytes())
            process = psutil.Process(record["shim_pid"])
            if abs(process.create_time() - record["shim_create_time"]) < 0.05:
                os.killpg(record["shim_pid"], signal.SIGKILL)
        except (ValueError, KeyError, TypeError, psutil.Error, ProcessLookupError):
            pass


def _remove_cgroup_tree(base: Path) -> None:
    """Kill the members of every cgroup under `base` (all ours) and remove them."""
    if not base.exists():
        return
    for _ in range(100):
        for directory in sorted(base.rglob("cgroup.procs")):
            for pid in directory.read_text().split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
        try:
            for directory in sorted((p for p in base.rglob("*") if p.is_dir()),
                                    key=lambda p: len(p.parts), reverse=True):
                directory.rmdir()
            base.rmdir()
            return
        except OSError:
            time.sleep(0.02)  # for the kernel to let go of the killed members
    raise RuntimeError(f"could not remove cgroup {base}")


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    environment = Env(tmp_path, secrets.token_hex(3))
    try:
        yield environment
    finally:
        if environment.state_dir.exists():
            _kill_recorded(environment.state_dir)
        for base in environment.bases:
            _remove_cgroup_tree(base)


@pytest.fixture
def netns(env: Env) -> Iterator[str]:
    name = f"kl-{env.token}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield f"/run/netns/{name}"
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


def run(coro):  # type: ignore[no-untyped-def]
    async def bounded():  # type: ignore[no-untyped-def]
        return await asyncio.wait_for(coro, 60)
    return asyncio.run(bounded())


async def exited(queue: asyncio.Queue[ContainerStatus], container_id: str) -> ContainerStatus:
    """The container's exit, as published (other containers' changes are skipped)."""
    while True:
        status = await asyncio.wait_for(queue.get(), 30)
        if status.id == container_id and status.state == "exited":
            return status


async def exits(queue: asyncio.Queue[ContainerStatus],
                container_ids: set[str]) -> dict[str, ContainerStatus]:
    """The exits of these containers, as published, whatever their order."""
    ends: dict[str, ContainerStatus] = {}
    while set(ends) != container_ids:
        status = await asyncio.wait_for(queue.get(), 30)
        if status.id in container_ids and status.state == "exited":
            ends[status.id] = status
    return ends


async def logged(config: ContainerConfig, text: str) -> None:
    """Wait (bounded) until the container's log holds `text`."""
    for _ in range(1000):
        if text.encode() in container_logs.read_logs(config.log_dir, config.attempt):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{text!r} never appeared in {config.name}'s log")


def dead(pid: int) -> bool:
    """Gone, or a zombie left for its new parent (init) to reap: it runs no more."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def cleanup(runtime: ProcessRuntime) -> None:
    for status in runtime.list():
        await runtime.stop(status.id, 0)
        await runtime.remove(status.id)
    await runtime.close()


# --- starting and ending -------------------------------------------------------------------

def test_exit_codes_and_reasons_are_published(env: Env) -> None:
    async def scenario() -> list[tuple[str, ...]]:
        runtime = env.runtime()
        queue = runtime.subscribe()
        seen = []
        for name, argv in [("ok", ["true"]), ("three", ["sh", "-c", "exit 3"])]:
            started = await runtime.start(env.config(name, argv))
            first = await asyncio.wait_for(queue.get(), 30)
            assert (first.id, first.state, first.pid) == (started.id, "running", started.pid)
            end = await exited(queue, started.id)
            assert end.finished_at is not None and end.started_at is not None
            assert end.finished_at >= end.started_at
            assert runtime.status(started.id) == end
            seen.append((name, end.exit_code, end.reason))
        await cleanup(runtime)
        return seen

    assert run(scenario()) == [("ok", 0, "Completed"), ("three", 3, "Error")]


def test_stop_sends_sigterm_to_the_whole_group_first(env: Env) -> None:
    child = ("import signal, sys, time\n"
             "def on_term(*_): print('child got TERM', flush=True); sys.exit(0)\n"
             "signal.signal(signal.SIGTERM, on_term)\n"
             "print('child ready', flush=True); time.sleep(60)\n")
    main = textwrap.dedent(f"""
        import signal, subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", {child!r}])
        def on_term(*_):
            child.wait()
            print("main got TERM", flush=True)
            sys.exit(0)
        signal.signal(signal.SIGTERM, on_term)
        print("main ready", flush=True)
        time.sleep(60)
    """)

    async def scenario() -> tuple[ContainerStatus, bytes]:
        runtime = env.runtime()
        config = env.config("polite", [PY, "-c", main])
        started = await runtime.start(config)
        await logged(config, "main ready")
        await logged(config, "child ready")
        stopped = await runtime.stop(started.id, 30)
        await cleanup(runtime)
        return stopped, container_logs.read_logs(config.log_dir, 0)

    stopped, output = run(scenario())
    assert (stopped.state, stopped.exit_code, stopped.reason) == ("exited", 0, "Completed")
    assert output.endswith(b"child got TERM\nmain got TERM\n")


def test_stop_kills_a_container_that_ignores_sigterm_after_the_grace(env: Env) -> None:
    script = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
              "print('ready', flush=True); time.sleep(60)")

    async def scenario() -> tuple[ContainerStatus, ContainerStatus, int]:
        runtime = env.runtime()
        config = env.config("stubborn", [PY, "-c", script])
        started = await runtime.start(config)
        await logged(config, "ready")
        assert started.pid is not None
        command = started.pid
        stopped = await runtime.stop(started.id, 0.3)
        again = await runtime.stop(started.id, 0.3)
        await cleanup(runtime)
        return stopped, again, command

    stopped, again, command = run(scenario())
    assert (stopped.exit_code, stopped.reason) == (137, "Error")
    assert again == stopped
    assert dead(command)


def test_what_the_command_leaves_behind_dies_with_it(env: Env) -> None:
    async def scenario() -> int:
        runtime = env.runtime()
        queue = runtime.subscribe()
        config = env.config("daemon", ["sh", "-c", "sleep 300 & echo $!; exit 0"])
        started = await runtime.start(config)
        assert (await exited(queue, started.id)).exit_code == 0
        orphan = int(container_logs.read_logs(config.log_dir, 0))
        await cleanup(runtime)
        return orphan

    assert dead(run(scenario()))


@pytest.mark.parametrize(("changes", "message"), [
    ({"argv": ["no-such-command"]},
     'exec: "no-such-command": executable file not found in $PATH'),
    ({"argv": ["/no/such/file"]},
     'exec: "/no/such/file": stat /no/such/file: no such file or directory'),
    ({"argv": ["/bin"]}, 'exec: "/bin": is a directory'),
    ({"argv": ["true"], "working_dir": "/no/such/dir"},
     'chdir to cwd ("/no/such/dir") failed: no such file or directory'),
    ({"argv": ["true"], "netns_path": "/run/netns/no-such-netns"},
     'failed to open netns "/run/netns/no-such-netns": no such file or directory'),
    ({"argv": []}, "no command specified"),
])
def test_start_errors_leave_nothing_behind(env: Env, changes: dict[str, Any],
                                           message: str) -> None:
    async def scenario() -> str:
        runtime = env.runtime()
        config = env.config("broken", changes.pop("argv"), **changes)
        with pytest.raises(StartError) as caught:
            await runtime.start(config)
        assert runtime.list() == []
        await runtime.close()
        return str(caught.value)

    assert run(scenario()) == message
    assert [p for p in env.state_dir.iterdir() if p.is_dir()] == []
    for base in env.bases:
        assert not (base / f"pod-{env.token}" / "broken-0").exists()


def test_start_errors_for_files_that_cannot_be_executed(env: Env, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.write_text("echo hi\n")
    plain.chmod(0o644)
    no_interpreter = tmp_path / "script"
    no_interpreter.write_text("#!/no/such/interpreter\necho hi\n")
    no_interpreter.chmod(0o755)
    data = tmp_path / "data"
    data.write_bytes(b"\x00\x01 not a program")
    data.chmod(0o755)

    async def scenario() -> list[str]:
        runtime = env.runtime()
        messages = []
        for path in (plain, no_interpreter, data):
            with pytest.raises(StartError) as caught:
                await runtime.start(env.config("file", [str(path)]))
            messages.append(str(caught.value))
        await runtime.close()
        return messages

    assert run(scenario()) == [f'exec: "{plain}": permission denied',
                               f'exec: "{no_interpreter}": no such file or directory',
                               f'exec: "{data}": exec format error']


def test_a_failure_of_the_exec_itself_is_a_start_error_too(env: Env) -> None:
    async def scenario() -> str:
        runtime = env.runtime()
        queue = runtime.subscribe()
        # execve itself refuses this environment; no check before spawning looks at it.
        config = env.config("bad-env", ["true"], env={"A=B": "1"})
        with pytest.raises(StartError) as caught:
            await runtime.start(config)
        assert runtime.list() == [] and queue.empty()
        assert not config.log_dir.exists() or not any(config.log_dir.iterdir())
        await runtime.close()
        return str(caught.value)

    assert run(scenario()) == 'exec: "true": illegal environment variable name'
    assert [p for p in env.state_dir.iterdir() if p.is_dir()] == []
    for base in env.bases:
        assert not (base / f"pod-{env.token}" / "bad-env-0").exists()


def test_the_command_gets_exactly_its_environment_and_working_dir(env: Env,
                                                                  tmp_path: Path) -> None:
    async def scenario() -> tuple[bytes, bytes]:
        runtime = env.runtime()
        queue = runtime.subscribe()
        outputs = []
        for name, argv in [("env", ["env"]), ("pwd", ["pwd"])]:
            config = env.config(name, argv, env={"my.var": "dots are fine", "FOO": "bar"},
                                working_dir=str(tmp_path))
            started = await runtime.start(config)
            assert (await exited(queue, started.id)).reason == "Completed"
            outputs.append(container_logs.read_logs(config.log_dir, 0))
        await cleanup(runtime)
        return outputs[0], outputs[1]

    environ, pwd = run(scenario())
    assert pwd.decode() == f"{tmp_path}\n"
    # The runtime adds PATH, and nothing else (a shell on the way would add PWD and
    # drop my.var).
    assert sorted(environ.decode().splitlines()) == sorted([
        "my.var=dots are fine", "FOO=bar",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"])


# --- logs ------------------------------------------------------------------------------------

def test_output_is_logged_in_cri_format(env: Env) -> None:
    # -u: print() writes a line's text and its newline in two writes.
    script = ("import sys; print('to stdout'); print('to stderr', file=sys.stderr); "
              "print('x' * 40000); sys.stdout.write('no newline')")

    async def scenario() -> ContainerConfig:
        runtime = env.runtime()
        queue = runtime.subscribe()
        config = env.config("logger", [PY, "-u", "-c", script])
        started = await runtime.start(config)
        assert (await exited(queue, started.id)).exit_code == 0
        await cleanup(runtime)
        return config

    config = run(scenario())
    records = [container_logs.parse_line(line)
               for line in (config.log_dir / "0.log").read_bytes().splitlines()]
    assert ("stderr", False, b"to stderr") in [(r.stream, r.partial, r.text) for r in records]
    stdout = [r for r in records if r.stream == "stdout"]
    assert stdout[0].text == b"to stdout" and not stdout[0].partial
    assert all(len(r.text) <= 16 * 1024 for r in records)
    assert stdout[-1].partial and stdout[-1].text.endswith(b"no newline")
    assert any(r.partial for r in stdout[1:-1])
    # The two streams are separate pipes: their order against each other is not kept.
    output = container_logs.read_logs(config.log_dir, 0)
    assert b"to stderr\n" in output
    assert output.replace(b"to stderr\n", b"", 1) == \
        b"to stdout\n" + b"x" * 40000 + b"\nno newline"


def test_an_unfinished_line_is_logged_while_the_container_runs(env: Env) -> None:
    async def scenario() -> list[container_logs.LogRecord]:
        runtime = env.runtime()
        config = env.config("prompt", ["sh", "-c", "printf 'name? '; exec sleep 300"])
        started = await runtime.start(config)
        await logged(config, "name? ")
        records = [container_logs.parse_line(line)
                   for line in (config.log_dir / "0.log").read_bytes().splitlines()]
        assert runtime.status(started.id).state == "running"  # type: ignore[union-attr]
        await cleanup(runtime)
        return records

    records = run(scenario())
    assert [(r.stream, r.partial, r.text) for r in records] == [("stdout", True, b"name? ")]


def test_logs_rotate_while_the_container_writes(env: Env) -> None:
    script = "for i in range(2000): print(f'line {i:04d}', flush=True)"

    async def scenario() -> ContainerConfig:
        runtime = env.runtime(log_max_bytes=8 * 1024, log_max_files=3)
        queue = runtime.subscribe()
        config = env.config("chatty", [PY, "-c", script])
        started = await runtime.start(config)
        assert (await exited(queue, started.id)).exit_code == 0
        await cleanup(runtime)
        return config

    config = run(scenario())
    assert sorted(p.name for p in config.log_dir.iterdir()) == ["0.log", "0.log.1", "0.log.2"]
    kept = container_logs.read_logs(config.log_dir, 0).decode().splitlines()
    assert kept == [f"line {i:04d}" for i in range(2000 - len(kept), 2000)]


# --- network namespace and exec ---------------------------------------------------------------

def test_a_container_in_a_netns_sees_only_that_netns(env: Env, netns: str) -> None:
    host_links = {line.split(":")[0].strip()
                  for line in Path("/proc/net/dev").read_text().splitlines()[2:]}
    assert host_links - {"lo"}, "the host should have links besides lo to tell them apart"

    async def scenario() -> tuple[bytes, bytes, int]:
        runtime = env.runtime()
        queue = runtime.subscribe()
        config = env.config("netns", ["cat", "/proc/net/dev"], netns_path=netns)
        started = await runtime.start(config)
        assert (await exited(queue, started.id)).exit_code == 0
        dev = container_logs.read_logs(config.log_dir, 0)
        sleeper = await runtime.start(env.config(
            "sleeper", ["sleep", "300"], netns_path=netns, env={"GREETING": "hello"},
            working_dir="/tmp"))
        code, out = await runtime.exec(sleeper.id, [
            "sh", "-c", 'echo "$GREETING from $(pwd)"; readlink /proc/self/ns/net; exit 4'], 10)
        await cleanup(runtime)
        return dev, out, code

    dev, out, code = run(scenario())
    links = {line.split(":")[0].strip() for line in dev.decode().splitlines()[2:]}
    assert links == {"lo"}
    assert code == 4
    assert out.decode().splitlines() == ["hello from /tmp",
                                         f"net:[{os.stat(netns).st_ino}]"]


def test_exec_timeout_kills_the_command_and_exec_needs_a_running_container(env: Env) -> None:
    async def scenario() -> None:
        runtime = env.runtime()
        started = await runtime.start(env.config("sleeper", ["sleep", "300"]))
        with pytest.raises(TimeoutError):
            await runtime.exec(started.id, ["sh", "-c", "echo $$ > exec.pid; sleep 300"], 0.5)
        with pytest.raises(StartError, match="executable file not found"):
            await runtime.exec(started.id, ["no-such-command"], 5)
        code, out = await runtime.exec(started.id, [PY, "-c", "print('y' * 200_000)"], 10)
        assert code == 0 and out == b"y" * 65536
        await runtime.stop(started.id, 0)
        with pytest.raises(ContainerNotRunning):
            await runtime.exec(started.id, ["true"], 5)
        await cleanup(runtime)

    run(scenario())


# --- cgroups --------------------------------------------------------------------------------

def test_limits_are_written_and_the_command_runs_inside_them(env: Env) -> None:
    async def scenario() -> None:
        runtime = env.runtime()
        assert runtime.limits in ("cgroup v1", "cgroup v2")
        config = env.config("limited", ["sh", "-c", "echo ready; exec sleep 300"],
                            cpu_limit_millicores=250, memory_limit_bytes=48 << 20)
        started = await runtime.start(config)
        dirs = runtime.cgroups.dirs(config.pod_uid, "limited-0")
        assert started.pid is not None
        shim = psutil.Process(started.pid).ppid()
        if runtime.cgroups.version == 1:
            assert (dirs["cpu"] / "cpu.cfs_quota_us").read_text().strip() == "25000"
            assert (dirs["cpu"] / "cpu.cfs_period_us").read_text().strip() == "100000"
            assert int((dirs["memory"] / "memory.limit_in_bytes").read_text()) == 48 << 20
        else:
            assert (dirs["unified"] / "cpu.max").read_text().split() == ["25000", "100000"]
            assert int((dirs["unified"] / "memory.max").read_text()) == 48 << 20
        for directory in dirs.values():
            members = (directory / "cgroup.procs").read_text().split()
            assert str(started.pid) in members and str(shim) not in members
        with pytest.raises(ContainerNotExited):
            await runtime.remove(started.id)
        await runtime.stop(started.id, 0)
        await runtime.remove(started.id)
        assert runtime.status(started.id) is None
        assert not (env.state_dir / started.id).exists()
        assert not any(d.exists() for d in dirs.values())
        assert (config.log_dir / "0.log").exists()
        await runtime.close()

    run(scenario())


def test_going_past_the_memory_limit_is_an_oom_kill(env: Env) -> None:
    script = "import time; hog = b'x' * (256 << 20); time.sleep(30)"

    async def scenario() -> ContainerStatus:
        runtime = env.runtime()
        queue = runtime.subscribe()
        config = env.config("hog", [PY, "-c", script], memory_limit_bytes=32 << 20)
        started = await runtime.start(config)
        end = await exited(queue, started.id)
        await cleanup(runtime)
        return end

    end = run(scenario())
    assert (end.exit_code, end.reason) == (137, "OOMKilled")


# --- agent restarts ---------------------------------------------------------------------------

AGENT = textwrap.dedent("""
    import asyncio, json, os, signal, sys
    from pathlib import Path
    from agents.process_runtime import ProcessRuntime
    from agents.runtime import ContainerConfig

    async def main():
        state_dir, log_root, cgroup_root, pod_uid, containers = sys.argv[1:6]
        runtime = ProcessRuntime(Path(state_dir), cgroup_root=cgroup_root,
                                 cgroup_under_self=True)
        ids = {}
        for name, argv in json.loads(containers).items():
            config = ContainerConfig(
                pod_uid=pod_uid, namespace="default", pod_name="web", name=name, attempt=0,
                argv=argv, env={}, working_dir=None, netns_path=None,
                cpu_limit_millicores=None, memory_limit_bytes=64 << 20,
                log_dir=Path(log_root) / name)
            status = await runtime.start(config)
            ids[name] = [status.id, status.pid]
        print(json.dumps(ids), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # the agent dies without closing anything

    asyncio.run(main())
""")


def test_containers_outlive_the_agent_and_are_recovered(env: Env) -> None:
    # The commands go on only once the first agent is gone (the test says so with a
    # file), so what they do then happens while no agent runs.
    gone = env.tmp / "agent-gone"
    wait_until_gone = textwrap.dedent(f"""
        import os, sys, time
        for _ in range(3000):
            if os.path.exists({str(gone)!r}):
                break
            time.sleep(0.01)
    """)
    counter = ("for i in range(75): print(i, flush=True)\n" + wait_until_gone +
               "for i in range(75, 150): print(i, flush=True); time.sleep(0.02)\n"
               "sys.exit(5)\n")
    quick = wait_until_gone + "print('quick done', flush=True); sys.exit(4)"
    containers = {"counter": [PY, "-c", counter], "quick": [PY, "-c", quick],
                  "victim": ["sleep", "300"]}
    agent = subprocess.run(
        [PY, "-c", AGENT, str(env.state_dir), str(env.tmp / "logs"), env.cgroup_root,
         f"pod-{env.token}", json.dumps(containers)],
        capture_output=True, timeout=60, check=False)
    env.bases.update(cgroups.detect(env.cgroup_root, under_self=True).bases.values())
    assert agent.returncode == -signal.SIGKILL, agent.stderr.decode()
    started = json.loads(agent.stdout)
    ids = {name: container_id for name, (container_id, _) in started.items()}
    gone.touch()
    # The victim's whole process group is SIGKILLed while no agent runs: no exit status
    # is recorded anywhere.
    os.killpg(os.getpgid(started["victim"][1]), signal.SIGKILL)

    async def scenario() -> tuple[list[ContainerStatus], dict[str, ContainerStatus]]:
        # Meanwhile the counter goes on writing into its pipe and the quick one ends;
        # both shims stay, the quick one's only to keep its pipes.
        await asyncio.sleep(0.5)
        runtime = env.runtime()
        queue = runtime.subscribe()
        recovered = await runtime.recover()
        ends = await exits(queue, {ids["quick"], ids["counter"]})
        await cleanup(runtime)
        return recovered, ends

    recovered, ends = run(scenario())
    by_name = {status.name: status for status in recovered}
    assert (by_name["victim"].state, by_name["victim"].exit_code,
            by_name["victim"].reason) == ("exited", 137, "Unknown")
    assert by_name["counter"].state == by_name["quick"].state == "running"
    assert by_name["counter"].pid == started["counter"][1]
    assert (ends[ids["quick"]].exit_code, ends[ids["quick"]].reason) == (4, "Error")
    assert (ends[ids["counter"]].exit_code, ends[ids["counter"]].reason) == (5, "Error")
    counter_log = container_logs.read_logs(env.tmp / "logs" / "counter", 0)
    assert counter_log.decode().split() == [str(i) for i in range(150)]
    assert container_logs.read_logs(env.tmp / "logs" / "quick", 0) == b"quick done\n"


def test_a_second_runtime_in_one_process_takes_over_after_close(env: Env) -> None:
    async def scenario() -> tuple[list[ContainerStatus], ContainerStatus]:
        first = env.runtime()
        config = env.config("long", ["sh", "-c", "echo one; sleep 0.5; echo two; exit 6"])
        started = await first.start(config)
        await logged(config, "one")
        await first.close()
        second = env.runtime()
        queue = second.subscribe()
        recovered = await second.recover()
        end = await exited(queue, started.id)
        assert (await second.recover()) == []  # nothing new to adopt
        assert container_logs.read_logs(config.log_dir, 0) == b"one\ntwo\n"
        await cleanup(second)
        return recovered, end

    recovered, end = run(scenario())
    assert [s.state for s in recovered] == ["running"]
    assert (end.exit_code, end.reason) == (6, "Error")

"""Container probes: what a probe spec means, and when its result changes (pure).

`ProbeSpec.parse` reads a container's livenessProbe/readinessProbe/startupProbe with
the API's defaults (initialDelaySeconds 0, periodSeconds 10, timeoutSeconds 1,
successThreshold 1, failureThreshold 3; 0 means "unset", as Kubernetes defaults it) and
resolves a named port against the container's ports, once, when the container starts.
Anything the agent cannot run (a grpc probe, no handler, a missing port) is a
`ProbeError` whose text says which field and why, in the apiserver's words.

`ProbeState` is the kubelet's probe worker (pkg/kubelet/prober/worker.go) without the
goroutine, for one container instance:

- the result starts at the kubelet's initial value: readiness Failure (not ready until
  a probe passes), liveness Success (alive until proven dead), startup Unknown;
- nothing runs before `initialDelaySeconds` have passed since the container started,
  then one probe per `periodSeconds`;
- the result only changes after `successThreshold` / `failureThreshold` equal outcomes
  in a row;
- a liveness or startup failure puts the probe on hold (the container is about to be
  killed); a startup success stops the startup probe;
- `reset` on each new container instance starts all of this over.

`ContainerProbes` holds the three for one container and adds the gate between them:
liveness and readiness do not run until the startup probe has succeeded.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

KINDS = ("startup", "liveness", "readiness")
HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")
DEFAULTS = {"initialDelaySeconds": 0, "periodSeconds": 10, "timeoutSeconds": 1,
            "successThreshold": 1, "failureThreshold": 3}


class ProbeError(ValueError):
    """A probe the agent cannot run; the message names the field."""


class Result(enum.Enum):
    SUCCESS = "success"
    FAILURE = "failure"
    UNKNOWN = "unknown"


INITIAL_RESULT = {"readiness": Result.FAILURE, "liveness": Result.SUCCESS,
                  "startup": Result.UNKNOWN}


@dataclass(frozen=True)
class ProbeSpec:
    kind: str                       # "liveness" | "readiness" | "startup"
    handler: str                    # "exec" | "httpGet" | "tcpSocket"
    command: tuple[str, ...] = ()
    scheme: str = "HTTP"
    host: str = ""                  # empty: the pod IP
    path: str = "/"
    port: int = 0
    headers: tuple[tuple[str, str], ...] = ()
    initial_delay: int = 0
    period: int = 10
    timeout: int = 1
    success_threshold: int = 1
    failure_threshold: int = 3
    termination_grace_period: int | None = None

    @property
    def event_name(self) -> str:
        """How the kubelet names the probe in events: `Liveness probe failed: ...`."""
        return self.kind.capitalize()

    @classmethod
    def parse(cls, probe: Mapping[str, Any], kind: str,
              container: Mapping[str, Any] | None = None, *,
              ports: Mapping[str, int] | None = None) -> ProbeSpec:
        """Read one probe with Kubernetes' defaults.

        `kind` is "liveness" or "livenessProbe" (and so on); a named port is looked up
        in `ports` (name -> containerPort) or else in `container`'s ports.
        """
        kind = kind.removesuffix("Probe")
        if kind not in KINDS:
            raise ProbeError(f"unknown probe kind {kind!r}: want one of {', '.join(KINDS)}")
        if ports is None:
            ports = container_ports(container or {})
        field = f"{kind}Probe"
        if not isinstance(probe, Mapping):
            raise ProbeError(f"{field}: Invalid value: must be an object")
        present = [h for h in HANDLERS if probe.get(h) is not None]
        if not present:
            raise ProbeError(f"{field}: Required value: must specify a handler type")
        if len(present) > 1:
            raise ProbeError(f"{field}: Forbidden: may not specify more than 1 handler type")
        handler = present[0]
        timing = {name: _count(probe, name, field, default) for name, default in DEFAULTS.items()}
        for name in ("periodSeconds", "timeoutSeconds", "successThreshold", "failureThreshold"):
            if timing[name] == 0:
                timing[name] = DEFAULTS[name]
        if kind != "readiness" and timing["successThreshold"] != 1:
            raise ProbeError(f"{field}.successThreshold: Invalid value: "
                             f"{timing['successThreshold']}: must be 1")
        grace = probe.get("terminationGracePeriodSeconds")
        if grace is not None:
            if kind == "readiness":
                raise ProbeError(f"{field}.terminationGracePeriodSeconds: Invalid value: {grace}: "
                                 "must not be set for readinessProbes")
            if not _is_int(grace) or grace <= 0:
                raise ProbeError(f"{field}.terminationGracePeriodSeconds: Invalid value: {grace}: "
                                 "must be greater than 0")
        common = dict(kind=kind, handler=handler, initial_delay=timing["initialDelaySeconds"],
                      period=timing["periodSeconds"], timeout=timing["timeoutSeconds"],
                      success_threshold=timing["successThreshold"],
                      failure_threshold=timing["failureThreshold"],
                      termination_grace_period=grace)
        action = probe[handler]
        where = f"{field}.{handler}"
        if not isinstance(action, Mapping):
            raise ProbeError(f"{where}: Invalid value: must be an object")
        if handler == "grpc":
            raise ProbeError(f"{where}: Unsupported value: grpc probes are not supported by this "
                             "node agent: use httpGet, tcpSocket or exec")
        if handler == "exec":
            command = action.get("command")
            if not command or not isinstance(command, Sequence) or isinstance(command, str):
                raise ProbeError(f"{where}.command: Required value")
            if not all(isinstance(arg, str) for arg in command):
                raise ProbeError(f"{where}.command: Invalid value: every argument must be a string")
            return cls(command=tuple(command), **common)
        port = resolve_port(action.get("port"), ports, f"{where}.port")
        host = action.get("host") or ""
        if not isinstance(host, str):
            raise ProbeError(f"{where}.host: Invalid value: must be a string")
        if handler == "tcpSocket":
            return cls(port=port, host=host, **common)
        scheme = action.get("scheme") or "HTTP"
        if scheme not in ("HTTP", "HTTPS"):
            raise ProbeError(f'{where}.scheme: Unsupported value: "{scheme}": '
                             'supported values: "HTTP", "HTTPS"')
        path = action.get("path") or "/"
        if not isinstance(path, str):
            raise ProbeError(f"{where}.path: Invalid value: must be a string")
        return cls(port=port, host=host, scheme=scheme, path=path,
                   headers=_headers(action.get("httpHeaders"), f"{where}.httpHeaders"), **common)


def container_ports(container: Mapping[str, Any]) -> dict[str, Any]:
    """A container's named ports: name -> containerPort."""
    return {p["name"]: p.get("containerPort") for p in container.get("ports") or []
            if isinstance(p, Mapping) and p.get("name")}


def resolve_port(port: object, ports: Mapping[str, Any], field: str) -> int:
    """A probe's port: a number, a named port of the container, or digits in a string."""
    if port is None or port == "":
        raise ProbeError(f"{field}: Required value")
    if isinstance(port, str):
        if port in ports:
            port = ports[port]
        elif port.isdigit():
            port = int(port)
        else:
            raise ProbeError(f'{field}: Invalid value: "{port}": '
                             "no port of that name in the container's ports")
    if not _is_int(port) or not 0 < port < 65536:
        raise ProbeError(f"{field}: Invalid value: {port}: must be between 1 and 65535, inclusive")
    return port


class ProbeState:
    """One probe of one container instance: when it is due and what it concluded."""

    def __init__(self, spec: ProbeSpec, started_at: float | None = None) -> None:
        self.spec = spec
        self.reset(started_at)

    def reset(self, started_at: float | None) -> None:
        """A new container instance (or none running, with None): start over."""
        self.started_at = started_at
        self.result = INITIAL_RESULT[self.spec.kind]
        self.last_probe_at: float | None = None
        self.on_hold = False
        self._last_outcome: Result | None = None
        self._run = 0

    def due(self, now: float, *, container_started: bool = True) -> bool:
        """Whether to run the probe at `now`.

        `container_started` is the startup gate: False holds liveness and readiness back
        until the container's startup probe has succeeded.
        """
        if self.started_at is None or self.on_hold:
            return False
        if self.spec.kind == "startup":
            if self.result is Result.SUCCESS:
                return False
        elif not container_started:
            return False
        # The kubelet compares whole seconds since the container started.
        if int(now - self.started_at) < self.spec.initial_delay:
            return False
        return self.last_probe_at is None or now - self.last_probe_at >= self.spec.period

    def next_due(self) -> float | None:
        """When the probe is next due, ignoring the startup gate (None: not while on hold)."""
        if self.started_at is None or self.on_hold:
            return None
        first = self.started_at + self.spec.initial_delay
        if self.last_probe_at is None:
            return first
        return max(first, self.last_probe_at + self.spec.period)

    def record(self, result: bool | Result, now: float) -> bool:
        """Count one probe outcome; returns True when the probe's result changed."""
        outcome = _outcome(result)
        self.last_probe_at = now
        if outcome == self._last_outcome:
            self._run += 1
        else:
            self._last_outcome = outcome
            self._run = 1
        threshold = (self.spec.success_threshold if outcome is Result.SUCCESS
                     else self.spec.failure_threshold)
        if self._run < threshold:
            return False
        changed = self.result is not outcome
        self.result = outcome
        if self.spec.kind != "readiness" and outcome is Result.FAILURE:
            # The container will be killed; probing it meanwhile only races the kill.
            self.on_hold = True
            self._run = 0
        return changed

    @property
    def success(self) -> bool:
        return self.result is Result.SUCCESS

    @property
    def failed(self) -> bool:
        return self.result is Result.FAILURE


class ContainerProbes:
    """The probes of one container, with the startup gate between them."""

    def __init__(self, container: Mapping[str, Any], started_at: float | None = None) -> None:
        self.name = str(container.get("name", ""))
        self.states: dict[str, ProbeState] = {}
        for kind in KINDS:
            probe = container.get(f"{kind}Probe")
            if probe is not None:
                self.states[kind] = ProbeState(ProbeSpec.parse(probe, kind, container), started_at)

    def reset(self, started_at: float | None) -> None:
        for state in self.states.values():
            state.reset(started_at)

    @property
    def started(self) -> bool:
        """The container counts as started (a running one without a startup probe does)."""
        startup = self.states.get("startup")
        return startup is None or startup.success

    @property
    def ready(self) -> bool:
        readiness = self.states.get("readiness")
        return self.started and (readiness is None or readiness.success)

    def due(self, now: float) -> list[ProbeState]:
        """The probes to run now, startup first."""
        started = self.started
        return [s for s in self.states.values() if s.due(now, container_started=started)]

    def record(self, kind: str, result: bool | Result, now: float) -> bool:
        return self.states[kind].record(result, now)

    def kill_reason(self) -> str | None:
        """Why the container must be restarted, in the kubelet's event words, or None."""
        for kind in ("startup", "liveness"):
            state = self.states.get(kind)
            if state is not None and state.failed:
                return f"Container {self.name} failed {kind} probe, will be restarted"
        return None


def _outcome(result: bool | Result) -> Result:
    if isinstance(result, Result):
        if result is Result.UNKNOWN:
            raise ValueError("a probe outcome is a success or a failure")
        return result
    return Result.SUCCESS if result else Result.FAILURE


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _count(probe: Mapping[str, Any], name: str, field: str, default: int) -> int:
    value = probe.get(name)
    if value is None:
        return default
    if not _is_int(value):
        raise ProbeError(f"{field}.{name}: Invalid value: {value!r}: must be an integer")
    if value < 0:
        raise ProbeError(f"{field}.{name}: Invalid value: {value}: "
                         "must be greater than or equal to 0")
    return value


def _headers(raw: object, field: str) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise ProbeError(f"{field}: Invalid value: must be a list of {{name, value}}")
    headers = []
    for i, header in enumerate(raw):
        if not isinstance(header, Mapping) or not header.get("name"):
            raise ProbeError(f"{field}[{i}].name: Required value")
        value = header.get("value", "")
        if not isinstance(header["name"], str) or not isinstance(value, str):
            raise ProbeError(f"{field}[{i}]: Invalid value: name and value must be strings")
        headers.append((header["name"], value))
    return tuple(headers)

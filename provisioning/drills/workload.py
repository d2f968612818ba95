"""The drill's workload: concurrent clients whose every request is recorded as an `Op`.

Three kinds of client run side by side, each a "process" that never has two requests
in flight (what the linearizability checker assumes):

- API registers: ConfigMaps `<run>-r<k>` read with GET and written with PUT through
  the load balancers; a compare-and-set is a PUT carrying the resourceVersion of the
  client's last read (409 Conflict: it did not happen). Each request is ONE HTTP
  attempt: apiserver.client's failover may resend a PUT with a resourceVersion after an
  unknown outcome (safe for a controller, but a 409 on the resend would then hide a
  write that did happen). A client moves to the next balancer after a failure instead.
- store registers: keys `/kubelite-drill/<run>/r<k>` through store.client (put, range,
  and a txn comparing the value as compare-and-set), which never resends a write whose
  fate is unknown;
- a store list `/kubelite-drill/<run>/list`: appends by read + txn on mod_revision in a
  loop (an element already present after an unknown attempt is not appended again),
  and reads of the whole list.

Outcomes: an answer is "ok" or "fail" (refused: 409, a failed compare, 429/503 with
Retry-After); a connection that could not be made is "fail"; a timeout or a
connection lost after the request went out is "unknown" for a write and "fail" for a
read (a read that did not answer constrains nothing). Times are time.monotonic().

Watchers follow the store prefix from the revision before the workload started,
through store.client's resuming watch, and record every event (revision, key, type)
for the watch-gap check. `unsafe_stale_reads` (the drills' self-test only) makes the
store readers ask one member at a time with serializable=true, i.e. possibly stale
reads, to prove that the checker notices.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import ssl as ssl_module
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from provisioning.drills.history import History, Op
from store.client import Compare, StoreClient, StoreUnavailable
from store.client import Op as StoreOp
from store.errors import EtcdError

NAMESPACE = "default"
STORE_PREFIX = "/kubelite-drill/"
FINAL_PROCESS = 10_000          # the process id of the reads made after healing
THINK = 0.01                    # pause between one client's requests
EVENT_TYPES = {0: "PUT", 1: "DELETE"}
LIST_KEY = "store/list"


@dataclass(frozen=True)
class WorkloadConfig:
    run: str                               # names this run's keys and objects
    balancers: tuple[str, ...]             # https://host:port of the load balancers
    store_endpoints: tuple[str, ...]       # http://host:port of every store member
    ssl: ssl_module.SSLContext | None = None
    api_clients: int = 3
    store_clients: int = 3
    list_clients: int = 2
    registers: int = 3
    watchers: int = 2
    op_timeout: float = 5.0
    seed: int = 0
    unsafe_stale_reads: bool = False

    @property
    def store_prefix(self) -> str:
        return f"{STORE_PREFIX}{self.run}/"

    def api_key(self, k: int) -> str:
        return f"api/r{k}"

    def store_key(self, k: int) -> str:
        return f"store/r{k}"

    def configmap(self, k: int) -> str:
        return f"{self.run}-r{k}"

    @property
    def list_key(self) -> str:
        return LIST_KEY


@dataclass
class Recorded:
    """What the workload saw: the history, the watchers' events, acked revisions."""

    history: History = field(default_factory=History)
    watch_events: list[list[tuple[int, str, str]]] = field(default_factory=list)
    watch_endpoints: list[list[str]] = field(default_factory=list)
    acked_revisions: set[int] = field(default_factory=set)
    start_revision: int = 0


class _Values:
    """Unique values per process, so that a read names the write it saw."""

    def __init__(self, process: int) -> None:
        self._counter = itertools.count(1)
        self.process = process

    def next(self) -> int:
        return self.process * 1_000_000 + next(self._counter)


def store_key_bytes(cfg: WorkloadConfig, key: str) -> bytes:
    """`store/r1` -> b"/kubelite-drill/<run>/r1"."""
    return (cfg.store_prefix + key.removeprefix("store/")).encode()


def _now() -> float:
    return time.monotonic()


# --- API registers ------------------------------------------------------------------------

class ApiRegisters:
    """One process's requests on the ConfigMap registers, one HTTP attempt each."""

    def __init__(self, cfg: WorkloadConfig, session: aiohttp.ClientSession, process: int,
                 out: Recorded) -> None:
        self.cfg, self.session, self.process, self.out = cfg, session, process, out
        self.server = process % len(cfg.balancers)
        self.values = _Values(process)
        self.seen: dict[int, tuple[Any, str]] = {}   # register -> (value, resourceVersion)

    def _url(self, k: int) -> str:
        base = self.cfg.balancers[self.server]
        return f"{base}/api/v1/namespaces/{NAMESPACE}/configmaps/{self.cfg.configmap(k)}"

    def _failed_over(self) -> None:
        self.server = (self.server + 1) % len(self.cfg.balancers)

    async def _exchange(self, method: str, url: str, body: Any = None
                        ) -> tuple[str, int, dict | None]:
        """("answered", code, body) | ("not-sent", 0, None) | ("lost", 0, None)."""
        timeout = aiohttp.ClientTimeout(total=self.cfg.op_timeout, sock_connect=1.0)
        try:
            async with self.session.request(method, url, json=body, timeout=timeout) as resp:
                raw = await resp.read()
                retry = resp.headers.get("Retry-After")
                try:
                    doc = json.loads(raw) if raw else None
                except ValueError:
                    doc = None
                if resp.status in (502, 503, 504) and retry:
                    return "refused", resp.status, doc
                return "answered", resp.status, doc
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError):
            return "not-sent", 0, None
        except (aiohttp.ClientError, TimeoutError, OSError):
            return "lost", 0, None

    async def read(self, k: int) -> None:
        key = self.cfg.api_key(k)
        t0 = _now()
        how, code, doc = await self._exchange("GET", self._url(k))
        t1 = _now()
        if how == "answered" and code == 200 and isinstance(doc, dict):
            data = doc.get("data") or {}
            value = int(data["value"]) if "value" in data else None
            self.seen[k] = (value, str(doc["metadata"]["resourceVersion"]))
            self.out.history.append(Op(self.process, "read", key, None, t0, t1, "ok", value))
            return
        self._failed_over()
        self.out.history.append(Op(self.process, "read", key, None, t0, t1, "fail"))

    async def write(self, k: int, cas: bool) -> None:
        key = self.cfg.api_key(k)
        new = self.values.next()
        meta: dict[str, Any] = {"name": self.cfg.configmap(k), "namespace": NAMESPACE}
        if cas:
            expected, rv = self.seen[k]
            meta["resourceVersion"] = rv
            value: Any = [expected, new]
        else:
            value = new
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
                "data": {"value": str(new)}}
        kind = "cas" if cas else "write"
        t0 = _now()
        how, code, _ = await self._exchange("PUT", self._url(k), body)
        t1 = _now()
        if how == "answered" and 200 <= code < 300:
            self.out.history.append(Op(self.process, kind, key, value, t0, t1, "ok",
                                       True if cas else None))
            self.seen.pop(k, None)
            return
        if how == "answered" and code < 500 or how in ("not-sent", "refused"):
            status = "fail"
        else:
            status = "unknown"      # lost after sending, or a 5xx: may have been applied
        if how != "answered":
            self._failed_over()
        # The answer's code stays with a failed op for the reader (the checkers ignore it).
        self.out.history.append(Op(self.process, kind, key, value, t0,
                                   t1 if status == "fail" else None, status,
                                   {"how": how, "code": code}))

    async def step(self, rng: random.Random) -> None:
        k = rng.randrange(self.cfg.registers)
        roll = rng.random()
        if roll < 0.5:
            await self.read(k)
        elif roll < 0.75 or k not in self.seen:
            await self.write(k, cas=False)
        else:
            await self.write(k, cas=True)


# --- store registers and the list ---------------------------------------------------------

def _store_failure(exc: BaseException, write: bool) -> str:
    if not write:
        return "fail"
    if isinstance(exc, StoreUnavailable):
        return "unknown" if exc.maybe_applied else "fail"
    if isinstance(exc, EtcdError):
        return "fail"
    return "unknown"                 # our own timeout around the call


class StoreRegisters:
    def __init__(self, cfg: WorkloadConfig, process: int, out: Recorded) -> None:
        self.cfg, self.process, self.out = cfg, process, out
        eps = list(cfg.store_endpoints)
        first = process % len(eps)
        self.client = StoreClient(eps[first:] + eps[:first], timeout=cfg.op_timeout)
        self.stale = [StoreClient([e], timeout=cfg.op_timeout) for e in eps] \
            if cfg.unsafe_stale_reads else []
        self.values = _Values(process)
        self.seen: dict[int, Any] = {}
        self._turn = itertools.count()

    async def close(self) -> None:
        for c in [self.client, *self.stale]:
            await c.close()

    async def read(self, k: int) -> None:
        key = self.cfg.store_key(k)
        t0 = _now()
        try:
            async with asyncio.timeout(self.cfg.op_timeout + 1):
                if self.stale:
                    client = self.stale[next(self._turn) % len(self.stale)]
                    kv = await client.get(store_key_bytes(self.cfg, key), serializable=True)
                else:
                    kv = await self.client.get(store_key_bytes(self.cfg, key))
        except (StoreUnavailable, EtcdError, TimeoutError, OSError):
            self.out.history.append(Op(self.process, "read", key, None, t0, _now(), "fail"))
            return
        value = int(kv.value) if kv is not None else None
        self.seen[k] = value
        self.out.history.append(Op(self.process, "read", key, None, t0, _now(), "ok", value))

    async def write(self, k: int, cas: bool) -> None:
        key = self.cfg.store_key(k)
        raw = store_key_bytes(self.cfg, key)
        new = self.values.next()
        expected = self.seen.get(k)
        kind = "cas" if cas else "write"
        value: Any = [expected, new] if cas else new
        t0 = _now()
        try:
            async with asyncio.timeout(self.cfg.op_timeout + 1):
                if cas:
                    guard = Compare.value(raw, "=", str(expected).encode()) \
                        if expected is not None else Compare.version(raw, "=", 0)
                    res = await self.client.txn([guard], [StoreOp.put(raw, str(new).encode())])
                    ok, revision = res.succeeded, res.revision
                else:
                    ok, revision = True, (await self.client.put(raw, str(new).encode())).revision
        except (StoreUnavailable, EtcdError, TimeoutError, OSError) as exc:
            status = _store_failure(exc, write=True)
            self.out.history.append(Op(self.process, kind, key, value, t0,
                                       _now() if status == "fail" else None, status))
            return
        t1 = _now()
        if ok:
            self.out.acked_revisions.add(revision)
        self.out.history.append(Op(self.process, kind, key, value, t0, t1,
                                   "ok" if ok else "fail", True if cas and ok else None))

    async def step(self, rng: random.Random) -> None:
        k = rng.randrange(self.cfg.registers)
        roll = rng.random()
        if roll < 0.5:
            await self.read(k)
        else:
            await self.write(k, cas=roll >= 0.75 and k in self.seen)


class StoreList:
    """Appends to one list held as a JSON array in one store key."""

    def __init__(self, cfg: WorkloadConfig, process: int, out: Recorded) -> None:
        self.cfg, self.process, self.out = cfg, process, out
        eps = list(cfg.store_endpoints)
        first = process % len(eps)
        self.client = StoreClient(eps[first:] + eps[:first], timeout=cfg.op_timeout)
        self.values = _Values(process)
        self.raw = store_key_bytes(cfg, "store/list")

    async def close(self) -> None:
        await self.client.close()

    async def _current(self) -> tuple[list[Any], int]:
        kv = await self.client.get(self.raw)
        if kv is None:
            return [], 0
        return json.loads(kv.value), kv.mod_revision

    async def read(self) -> None:
        t0 = _now()
        try:
            async with asyncio.timeout(self.cfg.op_timeout + 1):
                items, _ = await self._current()
        except (StoreUnavailable, EtcdError, TimeoutError, OSError):
            self.out.history.append(Op(self.process, "read-list", self.cfg.list_key, None, t0,
                                       _now(), "fail"))
            return
        self.out.history.append(Op(self.process, "read-list", self.cfg.list_key, None, t0,
                                   _now(), "ok", items))

    async def append(self) -> None:
        element = self.values.next()
        t0 = _now()
        unknown = False
        deadline = t0 + 2 * self.cfg.op_timeout
        status = "fail"
        for _ in range(100):
            if _now() > deadline:
                break
            try:
                async with asyncio.timeout(self.cfg.op_timeout + 1):
                    items, rev = await self._current()
                    if element in items:        # an earlier unknown attempt took effect
                        status = "ok"
                        break
                    guard = Compare.mod_revision(self.raw, "=", rev) if rev else \
                        Compare.version(self.raw, "=", 0)
                    body = json.dumps([*items, element]).encode()
                    res = await self.client.txn([guard], [StoreOp.put(self.raw, body)])
            except (StoreUnavailable, EtcdError, TimeoutError, OSError) as exc:
                unknown = unknown or _store_failure(exc, write=True) == "unknown"
                await asyncio.sleep(0.05)
                continue
            if res.succeeded:
                self.out.acked_revisions.add(res.revision)
                status = "ok"
                break
        if status != "ok" and unknown:
            status = "unknown"
        t1 = _now()
        self.out.history.append(Op(self.process, "append", self.cfg.list_key, element, t0,
                                   None if status == "unknown" else t1, status))

    async def step(self, rng: random.Random) -> None:
        if rng.random() < 0.3:
            await self.read()
        else:
            await self.append()


# --- watches --------------------------------------------------------------------------------

async def watch(cfg: WorkloadConfig, first: int, start_revision: int,
                events: list[tuple[int, str, str]], endpoints: list[str],
                stop: asyncio.Event) -> None:
    """Follow the run's prefix from `start_revision`, recording every event."""
    eps = list(cfg.store_endpoints)
    first %= len(eps)
    async with StoreClient(eps[first:] + eps[:first], timeout=cfg.op_timeout) as client:
        w = client.watch_prefix(cfg.store_prefix.encode(), start_revision=start_revision)
        async with w:
            it = aiter(w)
            while not stop.is_set():
                try:
                    batch = await asyncio.wait_for(anext(it), 0.5)
                except TimeoutError:
                    continue
                except StopAsyncIteration:
                    return
                if not endpoints or endpoints[-1] != w.endpoint:
                    endpoints.append(w.endpoint)
                for ev in batch.events:
                    events.append((ev.kv.mod_revision, ev.kv.key.decode(errors="replace"),
                                   EVENT_TYPES.get(int(ev.type), str(ev.type))))


# --- the whole workload -------------------------------------------------------------------

class Workload:
    """Starts the clients and watchers; `stop()` ends them and returns what they saw."""

    def __init__(self, cfg: WorkloadConfig) -> None:
        self.cfg = cfg
        self.out = Recorded()
        self._stop = asyncio.Event()          # ends the watchers
        self._halt = asyncio.Event()          # ends the clients, between two requests
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        self._closers: list[Any] = []

    async def prepare(self) -> None:
        """Create the registers and the list; note the revision the watches start at."""
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(
            limit=0, ssl=self.cfg.ssl if self.cfg.ssl is not None else True))
        for k in range(self.cfg.registers):
            body = {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": self.cfg.configmap(k), "namespace": NAMESPACE,
                                 "labels": {"kubelite-drill": self.cfg.run}}}
            await self._retry(lambda b=body: self._create(b))
        async with StoreClient(list(self.cfg.store_endpoints), timeout=10) as store:
            raw = store_key_bytes(self.cfg, "store/list")
            res = await self._retry(lambda: store.put(raw, b"[]"))
            self.out.start_revision = res.revision

    async def _create(self, body: dict) -> None:
        assert self._session is not None
        url = f"{self.cfg.balancers[0]}/api/v1/namespaces/{NAMESPACE}/configmaps"
        async with self._session.post(url, json=body,
                                      timeout=aiohttp.ClientTimeout(total=10)) as resp:
            if resp.status not in (200, 201, 409):
                raise RuntimeError(f"creating ConfigMap: HTTP {resp.status}: "
                                   f"{(await resp.text())[:200]}")

    async def _retry(self, fn: Any, attempts: int = 20) -> Any:
        for attempt in range(attempts):
            try:
                return await fn()
            except (aiohttp.ClientError, StoreUnavailable, TimeoutError, OSError,
                    RuntimeError):
                if attempt == attempts - 1:
                    raise
                await asyncio.sleep(0.5)
        return None

    def start(self) -> None:
        assert self._session is not None
        cfg = self.cfg
        clients: list[Any] = []
        pid = itertools.count(1)
        clients += [ApiRegisters(cfg, self._session, next(pid), self.out)
                    for _ in range(cfg.api_clients)]
        clients += [StoreRegisters(cfg, next(pid), self.out) for _ in range(cfg.store_clients)]
        clients += [StoreList(cfg, next(pid), self.out) for _ in range(cfg.list_clients)]
        self._closers = [c for c in clients if hasattr(c, "close")]
        for c in clients:
            self._spawn(self._loop(c), f"drill-client-{c.process}")
        for i in range(cfg.watchers):
            events: list[tuple[int, str, str]] = []
            endpoints: list[str] = []
            self.out.watch_events.append(events)
            self.out.watch_endpoints.append(endpoints)
            self._spawn(self._keep_watching(i, events, endpoints), f"drill-watch-{i}")

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.append(task)

    async def _loop(self, client: Any) -> None:
        rng = random.Random(f"{self.cfg.seed}/{client.process}")
        while not self._halt.is_set():
            await client.step(rng)
            await asyncio.sleep(THINK)

    async def _keep_watching(self, i: int, events: list[tuple[int, str, str]],
                             endpoints: list[str]) -> None:
        """A watch that ends with an error is opened again from the next revision."""
        for _ in range(10_000):
            if self._stop.is_set():
                return
            start = events[-1][0] + 1 if events else self.out.start_revision
            try:
                await watch(self.cfg, i, start, events, endpoints, self._stop)
            except (StoreUnavailable, EtcdError, OSError, aiohttp.ClientError):
                endpoints.append("(reopened)")
                await asyncio.sleep(0.2)

    async def stop_clients(self) -> None:
        self._halt.set()
        await asyncio.gather(*(t for t in self._tasks
                               if t.get_name().startswith("drill-client")),
                             return_exceptions=True)

    async def stop(self, drain_until: int = 0, drain_timeout: float = 15.0) -> Recorded:
        """Stop the clients between two requests (never mid-request: a write cut off
        unrecorded could explain nothing), then let the watchers catch up to revision
        `drain_until` before stopping them too."""
        client_tasks = [t for t in self._tasks if t.get_name().startswith("drill-client")]
        watch_tasks = [t for t in self._tasks if t.get_name().startswith("drill-watch")]
        self._halt.set()
        await asyncio.gather(*client_tasks, return_exceptions=True)
        deadline = _now() + drain_timeout
        while drain_until and _now() < deadline and any(
                not ev or ev[-1][0] < drain_until for ev in self.out.watch_events):
            await asyncio.sleep(0.1)
        self._stop.set()
        await asyncio.gather(*watch_tasks, return_exceptions=True)
        for c in self._closers:
            with contextlib.suppress(Exception):
                await c.close()
        if self._session is not None:
            await self._session.close()
        return self.out


async def final_reads(cfg: WorkloadConfig, history: History, session_ssl: Any,
                      timeout: float = 30.0) -> tuple[dict[str, Any], int]:
    """Read every register and the list once more after healing (linearizable reads,
    retried until they answer); recorded as ops. Returns (final state, the highest
    mod_revision under the run's prefix)."""
    state: dict[str, Any] = {}
    last_rev = 0
    deadline = _now() + timeout
    async with StoreClient(list(cfg.store_endpoints), timeout=10) as store:
        for _ in range(100):
            try:
                res = await store.get_prefix(cfg.store_prefix.encode())
                break
            except StoreUnavailable:
                if _now() > deadline:
                    raise
                await asyncio.sleep(0.5)
        by_key = {kv.key: kv for kv in res.kvs}
        last_rev = max((kv.mod_revision for kv in res.kvs), default=0)
        t = _now()
        for k in range(cfg.registers):
            key = cfg.store_key(k)
            kv = by_key.get(store_key_bytes(cfg, key))
            value = int(kv.value) if kv is not None else None
            state[key] = value
            history.append(Op(FINAL_PROCESS, "read", key, None, t, _now(), "ok", value))
        kv = by_key.get(store_key_bytes(cfg, "store/list"))
        items = json.loads(kv.value) if kv is not None else []
        state[cfg.list_key] = items
        history.append(Op(FINAL_PROCESS, "read-list", cfg.list_key, None, t, _now(), "ok",
                          items))
    connector = aiohttp.TCPConnector(ssl=session_ssl if session_ssl is not None else True)
    async with aiohttp.ClientSession(connector=connector) as session:
        for k in range(cfg.registers):
            key = cfg.api_key(k)
            for attempt in itertools.count():
                base = cfg.balancers[attempt % len(cfg.balancers)]
                url = f"{base}/api/v1/namespaces/{NAMESPACE}/configmaps/{cfg.configmap(k)}"
                t0 = _now()
                try:
                    async with session.get(url, timeout=aiohttp.ClientTimeout(total=5)) as r:
                        if r.status == 200:
                            doc = await r.json()
                            data = doc.get("data") or {}
                            value = int(data["value"]) if "value" in data else None
                            state[key] = value
                            history.append(Op(FINAL_PROCESS + 1, "read", key, None, t0,
                                              _now(), "ok", value))
                            break
                except (aiohttp.ClientError, TimeoutError, OSError):
                    pass
                if _now() > deadline:
                    raise RuntimeError(f"no apiserver answered the final read of {key}")
                await asyncio.sleep(0.3)
    return state, last_rev


async def member_snapshots(endpoints: Sequence[str], revision: int, timeout: float = 30.0
                           ) -> tuple[dict[str, dict[str, tuple[str, int]]], dict[str, int]]:
    """Every member's whole keyspace at `revision`, read from that member alone
    (serializable), and each member's current revision."""
    snapshots: dict[str, dict[str, tuple[str, int]]] = {}
    revisions: dict[str, int] = {}
    for endpoint in endpoints:
        deadline = _now() + timeout
        async with StoreClient([endpoint], timeout=10) as client:
            for _ in range(100):
                try:
                    status = await client.status(endpoint)
                    if status.revision < revision:
                        raise StoreUnavailable("behind")
                    res = await client.range(b"\x00", b"\x00", revision=revision,
                                             serializable=True)
                    break
                except (StoreUnavailable, EtcdError):
                    if _now() > deadline:
                        raise
                    await asyncio.sleep(0.5)
            snapshots[endpoint] = {kv.key.decode(errors="replace"):
                                   (kv.value.decode(errors="replace"), kv.mod_revision)
                                   for kv in res.kvs}
            revisions[endpoint] = status.revision
    return snapshots, revisions

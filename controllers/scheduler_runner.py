"""`kubelite scheduler`: informers in, a leader-elected term of scheduling out.

    kubelite scheduler --kubeconfig admin.kubeconfig [--server URL ...]
        [--scheduler-name default-scheduler] [--leader-elect-lease-duration 15s ...]

The decisions are controllers.scheduling's (pure); a term's loop and writers are in
controllers.scheduler_term. Here:

- Two informers, nodes and non-terminal pods of every namespace, run from start-up, in
  the standby too, so that a new leader starts with a warm cache. Their handlers keep
  the current term's Snapshot in step (bound pods counted where bound; a pod that
  turns terminal leaves the field selector and so arrives as a delete) and feed its
  queue: pending pods are added, parked ones retried when a node is added or changes
  in a way a filter reads, or a bound pod goes away (resources freed).
- `lead(writer)` is what the LeaderElector runs while this process holds the lease;
  `writer` is that term's fenced client. With `--leader-elect=false` it runs once with
  the plain client.
- Bindings whose outcome is unknown (`uncertain`) outlive a term: the next one counts
  them where they were sent and retries them there.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from apiserver.auth import kubeconfig
from apiserver.client import ApiClient
from apiserver.event_recorder import EventRecorder
from apiserver.informer import Informer
from apiserver.informer_cache import key_of
from controllers import election_config, scheduler_queue
from controllers.leader_election import LeaderElector, default_identity
from controllers.scheduler_queue import SchedulerQueue
from controllers.scheduler_term import Term, Writer, pending
from controllers.scheduling import events
from controllers.scheduling.podinfo import PodInfo

log = logging.getLogger(__name__)

Obj = dict[str, Any]
NON_TERMINAL = "status.phase!=Succeeded,status.phase!=Failed"
SYNC_TIMEOUT = 120.0
LEASE_NAME = "kube-scheduler"


@dataclass(frozen=True)
class Options:
    scheduler_name: str = events.SCHEDULER_NAME
    instance: str = ""  # this process's identity, in events' reportingInstance
    writers: int = 64  # bindings and status writes in flight at most
    batch: int = 64  # pods decided per turn of the loop
    initial_backoff: float = scheduler_queue.INITIAL_BACKOFF  # per pod, doubling ...
    max_backoff: float = scheduler_queue.MAX_BACKOFF  # ... up to this


def node_changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Did anything a filter reads change (kube-scheduler's nodeSchedulingPropertiesChange)?"""
    def view(node: Mapping[str, Any]) -> tuple[Any, ...]:
        spec, status = node.get("spec") or {}, node.get("status") or {}
        ready = [c.get("status") for c in status.get("conditions") or []
                 if isinstance(c, dict) and c.get("type") == "Ready"]
        return ((node.get("metadata") or {}).get("labels"), spec.get("unschedulable"),
                spec.get("taints"), status.get("allocatable"), ready)
    return view(old) != view(new)


def spec_changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """A pending pod's update that may change its verdict (not our own status writes)."""
    def view(pod: Mapping[str, Any]) -> tuple[Any, ...]:
        meta = pod.get("metadata") or {}
        return pod.get("spec"), meta.get("labels"), meta.get("ownerReferences")
    return view(old) != view(new)


class Scheduler:
    """The informers, and the term that runs while leading (`lead`)."""

    def __init__(self, api: Any, options: Options = Options()) -> None:
        self.api = api
        self.options = options
        self.nodes = Informer(api, "nodes")
        self.pods = Informer(api, "pods", field_selector=NON_TERMINAL)
        self.nodes.add_handlers(self._node_added, self._node_updated, self._node_deleted)
        self.pods.add_handlers(self._pod_added, self._pod_updated, self._pod_deleted)
        self.term: Term | None = None
        self.uncertain: dict[str, tuple[PodInfo, str]] = {}  # key -> (pod, node sent to)
        self.bound = 0  # bindings this process made

    async def start(self) -> None:
        await self.nodes.start()
        await self.pods.start()
        await self.nodes.wait_synced(SYNC_TIMEOUT)
        await self.pods.wait_synced(SYNC_TIMEOUT)
        log.info("scheduler %s: informers synced (%d nodes, %d pods)", self.options.instance,
                 len(self.nodes.keys()), len(self.pods.keys()))

    async def stop(self) -> None:
        await self.pods.stop()
        await self.nodes.stop()

    async def lead(self, writer: Writer) -> None:
        """Schedule until cancelled (the lease was lost, or shutdown)."""
        queue = SchedulerQueue(initial_backoff=self.options.initial_backoff,
                               max_backoff=self.options.max_backoff)
        term = Term(self, writer, queue, EventRecorder(writer, name="scheduler-events"))
        term.seed(self.nodes.list(), self.pods.list())
        self.term = term
        log.info("scheduler %s: leading; %d pods pending", self.options.instance, len(queue))
        try:
            await term.run()
        finally:
            self.term = None
            await term.close()
            log.info("scheduler %s: stopped leading (%d bound so far)", self.options.instance,
                     self.bound)

    # --- informer handlers: keep the term's view current ------------------------------

    def _node_added(self, node: Obj) -> None:
        if self.term is not None:
            self.term.snapshot.set_node(node)
            self.term.queue.move_all()

    def _node_updated(self, old: Obj, new: Obj) -> None:
        if self.term is not None:
            self.term.snapshot.set_node(new)
            if node_changed(old, new):
                self.term.queue.move_all()

    def _node_deleted(self, node: Obj) -> None:
        if self.term is not None:
            self.term.snapshot.remove_node(str((node.get("metadata") or {}).get("name") or ""))

    def _pod_added(self, pod: Obj) -> None:
        self._pod_updated(None, pod)

    def _pod_updated(self, old: Obj | None, pod: Obj) -> None:
        key = key_of(pod)
        term = self.term
        if (pod.get("spec") or {}).get("nodeName"):
            self.uncertain.pop(key, None)
            if term is not None:
                term.snapshot.update_pod(pod)
                term.queue.drop(key)
        elif term is not None and pending(pod, self.options.scheduler_name):
            if old is None:
                term.queue.add(key)
            else:
                term.queue.pod_updated(key, spec_changed(old, pod))

    def _pod_deleted(self, pod: Obj) -> None:
        key = key_of(pod)
        self.uncertain.pop(key, None)
        if self.term is not None:
            self.term.snapshot.remove_pod(pod)
            self.term.queue.drop(key)
            if (pod.get("spec") or {}).get("nodeName"):
                self.term.queue.move_all()  # its resources and ports are free again


# --- the process --------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kubelite scheduler",
                                description="Bind pending pods to nodes (leader-elected).")
    p.add_argument("--kubeconfig", required=True, help="credentials and apiserver URLs")
    p.add_argument("--server", action="append", default=[], metavar="URL",
                   help="apiserver URL (repeat or comma-separate; default: the kubeconfig's)")
    p.add_argument("--scheduler-name", default=events.SCHEDULER_NAME,
                   help="schedule pods whose spec.schedulerName is this")
    p.add_argument("--identity", default="",
                   help="leader-election identity, unique per process: a new process with "
                        "the holder's identity takes its lease at once (kubelite's flag; "
                        "default hostname_uuid)")
    p.add_argument("--bind-concurrency", type=int, default=Options.writers,
                   help="bindings and status writes in flight at most")
    p.add_argument("--log-level", default="info",
                   choices=("debug", "info", "warning", "error"))
    election_config.add_flags(p, LEASE_NAME)
    return p


def client_from(args: argparse.Namespace) -> ApiClient:
    config = kubeconfig.load_kubeconfig(args.kubeconfig)
    servers = [url for value in args.server for url in value.split(",") if url]
    return ApiClient(servers or config.servers, ssl=kubeconfig.ssl_context(config),
                     token=config.token, namespace=config.namespace,
                     user_agent="kubelite-scheduler")


async def run(args: argparse.Namespace, identity: str,
              election: election_config.ElectionConfig | None) -> int:
    """Informers first, then the elector (or, without election, the work itself);
    SIGTERM/SIGINT cancel it, which releases the lease."""
    options = Options(scheduler_name=args.scheduler_name, instance=identity,
                      writers=max(1, args.bind_concurrency))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with client_from(args) as api:
        scheduler = Scheduler(api, options)
        await scheduler.start()
        try:
            if election is not None:
                work = LeaderElector(api, election).run(scheduler.lead)
            else:
                work = scheduler.lead(api)
            task = loop.create_task(work, name="scheduler-main")
            stopper = loop.create_task(stop.wait(), name="scheduler-stop-signal")
            done, _ = await asyncio.wait([task, stopper], return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            task.cancel()
            await asyncio.gather(task, stopper, return_exceptions=True)
            if task in done and not task.cancelled() and task.exception() is not None:
                log.error("scheduler failed", exc_info=task.exception())
                return 1
        finally:
            await scheduler.stop()
    log.info("scheduler %s: exiting (%d bound)", identity, scheduler.bound)
    return 0


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    identity = args.identity or default_identity()
    try:
        election = election_config.from_args(args, identity) if args.leader_elect else None
    except ValueError as err:  # inconsistent leader-election timings
        print(f"kubelite scheduler: {err}", file=sys.stderr)
        return 2
    return asyncio.run(run(args, identity, election))

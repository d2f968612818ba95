"""Node lifecycle and node IPAM syncs.

Node lifecycle is driven by the clock more than by events: a node that dies sends no
event at all. Kubernetes' monitorNodeHealth runs every --node-monitor-period (5 s) over
every node; here the harness re-queues every node each period, and the reconcile's
RequeueAfter brings a node back at the exact moment its grace period or a pod's
toleration runs out. Lease renewals re-queue their node too, so that a node that comes
back loses its taints without waiting for the next period.

IPAM reconciles all nodes at once (the allocator needs to see every podCIDR in use), so
it has a single key. Its Updates carry the resourceVersion read: if the cache was
stale the PUT fails, and the next pass allocates from fresh state, which is what keeps
two nodes from ever getting the same range.
"""

from __future__ import annotations

from controllers import nodeipam, nodelifecycle
from controllers.context import Context
from controllers.harness import Controller
from controllers.informers import NODE
from controllers.runner import Outcome

IPAM_KEY = "cluster"


class NodeLifecycleSync:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        period = ctx.options.node_monitor_period.total_seconds()
        self.controller = Controller("nodelifecycle", self.sync,
                                     ctx.workers("nodelifecycle", 2), resync=period,
                                     keys=ctx.informers.nodes.keys)

    def reset(self) -> None:
        return None

    async def sync(self, key: str) -> Outcome | None:
        inf = self.ctx.informers
        node = inf.nodes.get(key)
        if node is None:
            return None
        lease = inf.leases.get(key)
        opts = self.ctx.options
        todo = nodelifecycle.reconcile(node, lease, inf.pods.by_index(NODE, key), self.ctx.now(),
                                       opts.node_monitor_grace_period, opts.pod_eviction_timeout,
                                       probe_period=opts.node_monitor_period)
        return await self.ctx.runner.run(todo, key=key)


class NodeIpamSync:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.controller = Controller("nodeipam", self.sync, 1, keys=lambda: [IPAM_KEY])

    def reset(self) -> None:
        return None

    async def sync(self, key: str) -> Outcome | None:
        opts = self.ctx.options
        if not opts.allocate_node_cidrs:
            return None
        todo = nodeipam.allocate(self.ctx.informers.nodes.list(), opts.cluster_cidr,
                                 opts.node_cidr_mask_size, self.ctx.now())
        return await self.ctx.runner.run(todo, key=key)

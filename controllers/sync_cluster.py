"""Cluster-level syncs: node lifecycle, node IPAM, ServiceAccounts and their tokens.

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

ServiceAccounts: one key per namespace, the `default` account in every active
namespace. Tokens: one key per account ("namespace/name"), its legacy token Secret
(sa_tokens.reconcile), minted with the --service-account-private-key-file key and
carrying the cluster CA (--root-ca-file). Creates of Secrets are expectations, as pods
are for ReplicaSets: a Secret cache that does not show the token just created would
otherwise make a second one.
"""

from __future__ import annotations

from apiserver.auth import pki, tokens
from controllers import meta, nodeipam, nodelifecycle, sa_tokens, serviceaccounts
from controllers.context import Context, random_suffix
from controllers.expectations import Expectations
from controllers.harness import Controller
from controllers.informers import NODE, Informers, split_key
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



class ServiceAccountSync:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.controller = Controller("serviceaccount", self.sync,
                                     ctx.workers("serviceaccount", 1),
                                     resync=ctx.options.sa_resync,
                                     keys=ctx.informers.namespaces.keys)

    def reset(self) -> None:
        return None

    async def sync(self, key: str) -> Outcome | None:
        inf = self.ctx.informers
        namespace = inf.namespaces.get(key)
        if namespace is None:
            return None
        todo = serviceaccounts.reconcile([namespace],
                                         Informers.in_namespace(inf.serviceaccounts, key))
        return await self.ctx.runner.run(todo, key=key)


class TokenSync:
    def __init__(self, ctx: Context, mint: sa_tokens.Minter, ca_crt: bytes) -> None:
        self.ctx = ctx
        self.mint = mint
        self.ca_crt = ca_crt
        self.controller = Controller("serviceaccount-token", self.sync,
                                     ctx.workers("serviceaccount-token", 2),
                                     keys=self.keys)
        self.reset()

    def reset(self) -> None:
        secrets = self.ctx.informers.secrets
        self.expectations = Expectations("secrets", lambda ns, name: secrets.get(name, ns),
                                         self.ctx.monotonic,
                                         self.ctx.options.expectations_timeout)

    def keys(self) -> list[str]:
        """Every account, and every account a token Secret names (gone ones included)."""
        inf = self.ctx.informers
        named = {f"{meta.namespace(s)}/{meta.annotations(s)[sa_tokens.NAME_ANNOTATION]}"
                 for s in inf.secrets.list() if s.get("type") == sa_tokens.TOKEN_TYPE
                 and meta.annotations(s).get(sa_tokens.NAME_ANNOTATION)}
        return sorted(set(inf.serviceaccounts.keys()) | named)

    async def sync(self, key: str) -> Outcome | None:
        if not self.expectations.satisfied(key):
            return Outcome(requeue_after=2.0)
        inf = self.ctx.informers
        namespace, name = split_key(key)
        account = Informers.get(inf.serviceaccounts, key)
        todo = sa_tokens.reconcile(namespace, name, account,
                                   Informers.in_namespace(inf.secrets, namespace),
                                   self.ca_crt, self.mint, self.ctx.wall(), random_suffix)
        if account is None:
            self.expectations.drop(key)
        return await self.ctx.runner.run(todo, key=key, expectations=self.expectations)


def minter(key_file: str, ttl: float) -> sa_tokens.Minter:
    """mint(namespace, name, uid) signing with the private key in `key_file`."""
    private_key = pki.load_private_key(key_file)

    def mint(namespace: str, name: str, uid: str) -> str:
        return tokens.mint_service_account_token(private_key, namespace, name, uid, ttl=ttl)

    return mint


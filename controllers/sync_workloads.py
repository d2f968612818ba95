"""ReplicaSet, Deployment, Job and Endpoints syncs: cache in, reconcile, runner out.

Each sync reads one object's key from the shared informers, hands the pure reconcile
what it needs (the object, its namespace's pods or ReplicaSets, the time, a name
generator) and runs the answer. What is not pure lives here:

- expectations: a ReplicaSet or Job whose earlier pod creates and deletes the pod
  cache does not show yet is not reconciled (it would count wrong and create twice);
  it is looked at again when the pod events arrive, or after EXPECTATIONS_RECHECK;
  a Deployment waits the same way for the ReplicaSets it created or deleted;
- the ReplicaSet's `manage_error`: the text of a pass's failed pod create or delete,
  handed to the reconcile again so that its status (ReplicaFailure) and a FailedCreate
  event say so, written at once (the failed run stopped before them) and on every
  later pass until one whose writes all succeed clears it.

State is per leadership term: `reset()` forgets it when this instance starts leading.

Endpoints have one key per Service: the reconcile needs the Service (None once it is
deleted: its Endpoints go too), the pods of its namespace and the Endpoints it finds in
the cache; a stale cache makes the PUT fail on resourceVersion and the key is retried.
"""

from __future__ import annotations

from controllers import actions, deployment, endpoints, job, replicaset
from controllers.context import Context, random_suffix
from controllers.expectations import Expectations
from controllers.harness import Controller
from controllers.informers import Informers, split_key
from controllers.runner import Outcome

EXPECTATIONS_RECHECK = 2.0  # seconds; the pod events usually come first


class _OwnerSync:
    """What the ReplicaSet, Deployment and Job syncs share: a controller over the
    owners' keys, and expectations on the objects (pods or ReplicaSets) they create."""

    name = ""    # the controller, as --concurrent-<name>-syncs names it
    owners = ""  # the informer holding the owners
    owned = ""   # the informer holding what they create

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.controller = Controller(self.name, self.sync, ctx.workers(self.name, 5),
                                     keys=getattr(ctx.informers, self.owners).keys)
        self.reset()

    def reset(self) -> None:
        owned = getattr(self.ctx.informers, self.owned)
        self.expectations = Expectations(self.owned, lambda ns, name: owned.get(name, ns),
                                         self.ctx.monotonic,
                                         self.ctx.options.expectations_timeout)

    def forget(self, key: str) -> None:
        """The owner is gone: drop what this term remembered about it."""
        self.expectations.drop(key)

    async def sync(self, key: str) -> Outcome | None:
        obj = Informers.get(getattr(self.ctx.informers, self.owners), key)
        if obj is None:
            self.forget(key)
            return None
        if not self.expectations.satisfied(key):
            return Outcome(requeue_after=EXPECTATIONS_RECHECK)
        namespace, _ = split_key(key)
        return await self.sync_object(key, obj, namespace)

    async def sync_object(self, key: str, obj: dict, namespace: str) -> Outcome | None:
        raise NotImplementedError


class ReplicaSetSync(_OwnerSync):
    name, owners, owned = "replicaset", "replicasets", "pods"

    def reset(self) -> None:
        super().reset()
        self.errors: dict[str, str] = {}

    def forget(self, key: str) -> None:
        super().forget(key)
        self.errors.pop(key, None)

    async def sync_object(self, key: str, rs: dict, namespace: str) -> Outcome | None:
        pods = Informers.in_namespace(self.ctx.informers.pods, namespace)
        todo, _ = replicaset.reconcile(rs, pods, self.ctx.now(), random_suffix,
                                       manage_error=self.errors.get(key))
        outcome = await self.ctx.runner.run(todo, key=key, expectations=self.expectations)
        if _note_manage_error(self.errors, key, outcome):
            # As syncReplicaSet does after a failed manageReplicas: the status (and a
            # FailedCreate event) still go out, though the run stopped before them.
            again, _ = replicaset.reconcile(rs, pods, self.ctx.now(), random_suffix,
                                            manage_error=self.errors[key])
            report = [a for a in again if isinstance(a, actions.UpdateStatus | actions.Emit)]
            await self.ctx.runner.run(report, key=key)
        return outcome


class DeploymentSync(_OwnerSync):
    name, owners, owned = "deployment", "deployments", "replicasets"

    async def sync_object(self, key: str, d: dict, namespace: str) -> Outcome | None:
        inf = self.ctx.informers
        todo, _ = deployment.reconcile(d, Informers.in_namespace(inf.replicasets, namespace),
                                       Informers.in_namespace(inf.pods, namespace),
                                       self.ctx.now())
        return await self.ctx.runner.run(todo, key=key, expectations=self.expectations)


class JobSync(_OwnerSync):
    name, owners, owned = "job", "jobs", "pods"

    async def sync_object(self, key: str, obj: dict, namespace: str) -> Outcome | None:
        todo, _ = job.reconcile(obj, Informers.in_namespace(self.ctx.informers.pods, namespace),
                                self.ctx.now(), random_suffix)
        return await self.ctx.runner.run(todo, key=key, expectations=self.expectations)


class EndpointsSync:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.controller = Controller("endpoints", self.sync, ctx.workers("endpoints", 5),
                                     keys=ctx.informers.services.keys)

    def reset(self) -> None:
        return None

    async def sync(self, key: str) -> Outcome | None:
        inf = self.ctx.informers
        namespace, _ = split_key(key)
        service = Informers.get(inf.services, key)
        existing = Informers.get(inf.endpoints, key)
        pods = Informers.in_namespace(inf.pods, namespace) if service is not None else []
        todo = endpoints.reconcile(service, pods, existing)
        return await self.ctx.runner.run(todo, key=key)


def _note_manage_error(errors: dict[str, str], key: str, outcome: Outcome) -> bool:
    """Remember a failed pod create/delete for the next reconcile (True), forget it on
    success."""
    if outcome.ok:
        errors.pop(key, None)
    elif not outcome.fenced and isinstance(outcome.failed, actions.Create | actions.Delete) \
            and outcome.failed.resource == "pods" and outcome.error:
        errors[key] = outcome.error
        return True
    return False

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


class ReplicaSetSync:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.controller = Controller("replicaset", self.sync, ctx.workers("replicaset", 5),
                                     keys=ctx.informers.replicasets.keys)
        self.reset()

    def reset(self) -> None:
        pods = self.ctx.informers.pods
        self.expectations = Expectations("pods", lambda ns, name: pods.get(name, ns),
                                         self.ctx.monotonic,
                                         self.ctx.options.expectations_timeout)
        self.errors: dict[str, str] = {}

    async def sync(self, key: str) -> Outcome | None:
        inf = self.ctx.informers
        rs = Informers.get(inf.replicasets, key)
        if rs is None:
            self.expectations.drop(key)
            self.errors.pop(key, None)
            return None
        if not self.expectations.satisfied(key):
            return Outcome(requeue_after=EXPECTATIONS_RECHECK)
        namespace, _ = split_key(key)
        pods = Informers.in_namespace(inf.pods, namespace)
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


class DeploymentSync:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.controller = Controller("deployment", self.sync, ctx.workers("deployment", 5),
                                     keys=ctx.informers.deployments.keys)
        self.reset()

    def reset(self) -> None:
        replicasets = self.ctx.informers.replicasets
        self.expectations = Expectations("replicasets",
                                         lambda ns, name: replicasets.get(name, ns),
                                         self.ctx.monotonic,
                                         self.ctx.options.expectations_timeout)

    async def sync(self, key: str) -> Outcome | None:
        inf = self.ctx.informers
        d = Informers.get(inf.deployments, key)
        if d is None:
            self.expectations.drop(key)
            return None
        if not self.expectations.satisfied(key):
            return Outcome(requeue_after=EXPECTATIONS_RECHECK)
        namespace, _ = split_key(key)
        todo, _ = deployment.reconcile(d, Informers.in_namespace(inf.replicasets, namespace),
                                       Informers.in_namespace(inf.pods, namespace),
                                       self.ctx.now())
        return await self.ctx.runner.run(todo, key=key, expectations=self.expectations)


class JobSync:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.controller = Controller("job", self.sync, ctx.workers("job", 5),
                                     keys=ctx.informers.jobs.keys)
        self.reset()

    def reset(self) -> None:
        pods = self.ctx.informers.pods
        self.expectations = Expectations("pods", lambda ns, name: pods.get(name, ns),
                                         self.ctx.monotonic,
                                         self.ctx.options.expectations_timeout)

    async def sync(self, key: str) -> Outcome | None:
        inf = self.ctx.informers
        obj = Informers.get(inf.jobs, key)
        if obj is None:
            self.expectations.drop(key)
            return None
        if not self.expectations.satisfied(key):
            return Outcome(requeue_after=EXPECTATIONS_RECHECK)
        namespace, _ = split_key(key)
        todo, _ = job.reconcile(obj, Informers.in_namespace(inf.pods, namespace),
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

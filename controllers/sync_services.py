"""Endpoints sync: one key per Service, the Endpoints object of the same name.

The reconcile needs the Service (None once it is deleted: its Endpoints go too), the
pods of its namespace and the Endpoints it finds in the cache; a stale cache makes the
PUT fail on resourceVersion and the key is retried from fresh state.
"""

from __future__ import annotations

from controllers import endpoints
from controllers.context import Context
from controllers.harness import Controller
from controllers.informers import Informers, split_key
from controllers.runner import Outcome


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

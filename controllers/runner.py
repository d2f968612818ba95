"""The runner: executes a reconcile's actions through the API client (the I/O edge).

It keeps the contract written at the top of controllers/actions.py:

- groups (`actions.batches`) run in list order; the Creates of one slow-start batch
  run concurrently; the first group with a failure ends the run, and the `Outcome`
  says why so that the caller requeues with back-off (and may pass the error back in
  as `manage_error`);
- Update/UpdateStatus PUT the object as read: a 409 means the cache was stale;
- Delete sends its uid precondition and propagation policy. "Not found", and a uid
  precondition that fails (the object we meant is gone, a namesake stands there), both
  mean the object we wanted gone is gone: success;
- a Create whose chosen name is taken (409 AlreadyExists) goes once more without the
  name when the object has `generateName`, so the server picks one (the pod names
  controllers choose are random and may, rarely, collide). A create whose outcome is
  unknown (the apiserver died mid-request) is looked up by name before it counts as
  failed, so that a pod that did get created is not created twice;
- Emit hands the event to the recorder (written in the background, aggregated);
- RequeueAfter is reported, the shortest one.

Every write goes through the term's FencedClient (leader_election), which refuses it
once this instance may no longer lead; the run then stops as failed, whatever is left
undone (the new leader decides afresh). Reads (the runner's own GETs) need no fence.
Creates and deletes of the tracked resource are recorded in the caller's
Expectations, so that it does not reconcile again before its informer shows them.

`owners_gone` is the garbage collector's live check: a cache that lags may not hold an
owner yet, and dependents must not be deleted for that.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from apiserver import client_paths, registry
from apiserver.client_policy import ApiStatusError, ApiUnavailable
from controllers import actions, meta
from controllers.expectations import Expectations
from controllers.leader_election import Fenced

log = logging.getLogger(__name__)

Obj = dict[str, Any]

PATCH_TYPES = {actions.MERGE_PATCH: "merge", actions.JSON_PATCH: "json",
               actions.STRATEGIC_MERGE_PATCH: "strategic"}


class Reader(Protocol):
    """The reads the runner makes itself (apiserver.client.ApiClient): never fenced."""

    async def get(self, path: str, *, timeout: float | None = ...) -> dict[str, Any]: ...


class Writer(Protocol):
    """The writes (leader_election.FencedClient, or the ApiClient when not electing)."""

    async def create(self, obj: Mapping[str, Any], *, timeout: float | None = ...,
                     **options: Any) -> dict[str, Any]: ...

    async def update(self, obj: Mapping[str, Any], *, timeout: float | None = ...,
                     **options: Any) -> dict[str, Any]: ...

    async def patch(self, path: str, patch: Any, *, type: str = ...,
                    timeout: float | None = ...) -> dict[str, Any]: ...

    async def delete(self, path: str, options: Mapping[str, Any] | None = ..., *,
                     timeout: float | None = ...) -> dict[str, Any]: ...


class Recorder(Protocol):
    def record(self, event: Obj) -> None: ...


@dataclass
class Outcome:
    """What a run did: the first failure (None: everything went out) and the requeue ask."""

    error: str | None = None
    conflict: bool = False  # the failure was a 409: the cache was stale, retry soon
    fenced: bool = False
    requeue_after: float | None = None
    failed: actions.Action | None = None  # the action that failed first
    writes: int = 0
    created: list[Obj] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


class Runner:
    """Executes action lists for one controller (its events tagged by the actions)."""

    def __init__(self, reader: Reader, writer: Writer, recorder: Recorder | None = None, *,
                 timeout: float = 15.0) -> None:
        self.reader = reader
        self.writer = writer
        self.recorder = recorder
        self.timeout = timeout

    async def run(self, todo: Sequence[actions.Action], *, key: str = "",
                  expectations: Expectations | None = None) -> Outcome:
        outcome = Outcome(requeue_after=actions.requeue_after(todo))
        for group in actions.batches(todo):
            if len(group) == 1:
                errors = [await self._execute(group[0], key, expectations, outcome)]
            else:
                errors = list(await asyncio.gather(
                    *(self._execute(a, key, expectations, outcome) for a in group)))
            failed = [(a, e) for a, e in zip(group, errors, strict=True) if e is not None]
            if failed:
                outcome.failed, outcome.error = failed[0]
                break
        return outcome

    async def _execute(self, action: actions.Action, key: str,
                       expectations: Expectations | None, outcome: Outcome) -> str | None:
        """One action; the error text if it failed."""
        if isinstance(action, actions.Emit):
            if self.recorder is not None:
                self.recorder.record(action.event)
            return None
        try:
            if isinstance(action, actions.Create):
                created = await self._create(action)
                outcome.created.append(created)
                if expectations is not None and action.resource == expectations.resource:
                    expectations.expect_create(key, meta.namespace(created) or
                                               (action.namespace or ""), meta.name(created))
            elif isinstance(action, actions.Update | actions.UpdateStatus):
                sub = "status" if isinstance(action, actions.UpdateStatus) else None
                await self.writer.update(_typed(action), subresource=sub, timeout=self.timeout)
            elif isinstance(action, actions.Patch):
                path = client_paths.resource_path(action.api_version, action.resource,
                                                  action.namespace, action.name,
                                                  action.subresource or None)
                await self.writer.patch(path, action.patch, type=PATCH_TYPES[action.patch_type],
                                     timeout=self.timeout)
            elif isinstance(action, actions.Delete):
                await self._delete(action)
                if expectations is not None and action.resource == expectations.resource:
                    expectations.expect_delete(key, action.namespace or "", action.name,
                                               action.uid_precondition or "")
            outcome.writes += 1
            return None
        except Fenced as err:
            outcome.fenced = True
            log.info("%s %s not sent: %s", type(action).__name__, _describe(action), err)
            return "not the leader any more"
        except ApiStatusError as err:
            outcome.conflict = outcome.conflict or err.code == 409
            # A 409 is optimistic concurrency at work (a stale cache): routine, retried.
            log.log(logging.DEBUG if err.code == 409 else logging.INFO, "%s %s: %s",
                    type(action).__name__, _describe(action), err)
            return str(err)
        except (ValueError, KeyError) as err:  # a malformed action: a controller bug
            log.error("%s %s refused by the runner: %s", type(action).__name__,
                      _describe(action), err)
            return f"malformed action: {err}"

    async def _create(self, action: actions.Create) -> Obj:
        path = client_paths.resource_path(action.api_version, action.resource, action.namespace)
        obj = action.obj
        md = meta.metadata(obj)
        try:
            return await self.writer.create(obj, path=path, timeout=self.timeout)
        except ApiUnavailable as err:
            if not err.maybe_applied or not md.get("name"):
                raise
            found = await self._find_created(action)
            if found is None:
                raise
            return found
        except ApiStatusError as err:
            if err.code != 409 or err.reason != "AlreadyExists" \
                    or not md.get("name") or not md.get("generateName"):
                raise
            log.info("%s %s exists already; letting the server name it", action.resource,
                     md["name"])
            unnamed = {**obj, "metadata": {k: v for k, v in md.items() if k != "name"}}
            return await self.writer.create(unnamed, path=path, timeout=self.timeout)

    async def _find_created(self, action: actions.Create) -> Obj | None:
        """After an unknown outcome: the object we meant, if the create did happen."""
        name = meta.name(action.obj)
        path = client_paths.resource_path(action.api_version, action.resource,
                                          action.namespace, name)
        try:
            found = await self.reader.get(path, timeout=self.timeout)
        except ApiStatusError:
            return None
        mine = meta.metadata(action.obj).get("ownerReferences") or []
        theirs = meta.metadata(found).get("ownerReferences") or []
        same_owner = [r.get("uid") for r in mine] == [r.get("uid") for r in theirs]
        return found if same_owner else None

    async def _delete(self, action: actions.Delete) -> None:
        path = client_paths.resource_path(action.api_version, action.resource,
                                          action.namespace, action.name)
        body = actions.delete_body(action)
        options = {k: v for k, v in body.items() if k not in ("kind", "apiVersion")}
        try:
            await self.writer.delete(path, options or None, timeout=self.timeout)
        except ApiStatusError as err:
            if err.code == 404 or (err.code == 409 and action.uid_precondition
                                   and "precondition" in err.message.lower()):
                log.debug("%s %s already gone: %s", action.resource, action.name, err)
                return
            raise


async def owner_exists(api: Reader, ref: Mapping[str, Any], namespace: str | None,
                       timeout: float = 10.0) -> bool:
    """A live GET of the owner `ref` names: does an object with its uid exist?

    Anything but a clear "not found" or another uid counts as existing, so that an
    unreachable apiserver can never make the collector delete a dependent.
    """
    resource = registry.by_kind(str(ref.get("apiVersion", "")), str(ref.get("kind", "")))
    if resource is None:
        return True  # a kind we do not know: never collect on its account
    path = client_paths.path_of(resource, namespace if resource.namespaced else None,
                                str(ref.get("name", "")))
    try:
        owner = await api.get(path, timeout=timeout)
    except ApiStatusError as err:
        return err.code != 404
    return meta.uid(owner) == ref.get("uid")


def _typed(action: actions.Update | actions.UpdateStatus) -> Obj:
    """The object to PUT, with the apiVersion and kind its path is derived from (a
    list's items may come without them)."""
    obj = action.obj
    if obj.get("apiVersion") and obj.get("kind"):
        return obj
    resource = client_paths.lookup(action.api_version, action.resource)
    return {**obj, "apiVersion": resource.api_version, "kind": resource.kind}


def _describe(action: actions.Action) -> str:
    if isinstance(action, actions.Create | actions.Update | actions.UpdateStatus):
        md = meta.metadata(action.obj)
        name = md.get("name") or md.get("generateName", "") + "*"
        return f"{action.resource} {action.namespace or ''}/{name}"
    if isinstance(action, actions.Patch | actions.Delete):
        return f"{action.resource} {action.namespace or ''}/{action.name}"
    return ""

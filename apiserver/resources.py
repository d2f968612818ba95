"""The resource verbs: list, watch, get, create, update, patch, delete, and subresources.

Each handler reads the request, runs the pure rules (defaulting, validation, patches,
life-cycle), and writes through `Storage`, which turns every write into a store
transaction. Errors are `ApiError`s, answered as Kubernetes Status objects.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import orjson
from aiohttp import web

from apiserver import (
    defaults,
    field_selectors,
    http_util,
    objects,
    patches,
    registry,
    selectors,
    status,
    tables,
    typecheck,
    validation,
)
from apiserver.node_proxy import AgentDialer, container_log_path, log_container, log_query
from apiserver.registry import Resource
from apiserver.request_info import RequestInfo, is_true
from apiserver.service_ips import ServiceIPs
from apiserver.storage import Storage
from apiserver.watch_cache import WatchCache, WatchEvent

NAMESPACES = registry.lookup("", "v1", "namespaces")
NODES = registry.lookup("", "v1", "nodes")


class ResourceHandlers:
    def __init__(self, storage: Storage, cache: WatchCache,
                 service_ips: ServiceIPs | None = None,
                 agents: AgentDialer | None = None) -> None:
        self.storage = storage
        self.cache = cache
        self.service_ips = service_ips
        self.agents = agents or AgentDialer()

    @staticmethod
    def now() -> datetime:
        return datetime.now(UTC)

    # ---- dispatch ------------------------------------------------------------------

    async def handle(self, request: web.Request, info: RequestInfo,
                     resource: Resource) -> web.StreamResponse:
        sub = info.subresource
        if sub and sub not in resource.subresources:
            raise status.not_found_path()
        if resource.namespaced and info.namespace is None and info.verb not in (
                "list", "watch"):
            raise status.not_found_path()
        if not resource.namespaced and info.namespace is not None:
            raise status.not_found_path()
        verb = info.verb
        if not sub and (verb == "create") == bool(info.name) and verb in (
                "create", "update", "patch"):
            # POST names no object; PUT and PATCH always do (405 as Kubernetes answers).
            raise status.method_not_allowed(resource.plural, resource.group, verb)
        if sub == "scale":
            return await self.scale(request, info, resource)
        if sub == "binding" and verb == "create":
            return await self.bind(request, info, resource)
        if sub == "eviction" and verb == "create":
            return await self.evict(request, info, resource)
        if sub == "log" and verb == "get":
            return await self.pod_log(request, info, resource)
        if sub == "proxy" and verb == "get":
            return await self.node_proxy(request, info)
        if verb == "list":
            return await self.list(request, info, resource)
        if verb == "watch":
            return await self.watch(request, info, resource)
        if verb == "get":
            return await self.get(request, info, resource)
        if verb == "create":
            return await self.create(request, info, resource)
        if verb == "update":
            return await self.update(request, info, resource)
        if verb == "patch":
            return await self.patch(request, info, resource)
        if verb == "delete":
            return await self.delete(request, info, resource)
        if verb == "deletecollection":
            return await self.delete_collection(request, info, resource)
        raise status.method_not_allowed(resource.plural, resource.group, verb)

    # ---- reads ---------------------------------------------------------------------

    def _filters(self, request: web.Request, resource: Resource):
        label_text = request.query.get("labelSelector", "")
        field_text = request.query.get("fieldSelector", "")
        try:
            labels = selectors.parse_label_selector(label_text) if label_text else None
            fields = field_selectors.parse_field_selector(field_text, resource.kind) \
                if field_text else None
        except ValueError as exc:
            raise status.bad_request(str(exc)) from exc

        def keep(obj: dict) -> bool:
            if labels is not None and not labels.matches(
                    obj.get("metadata", {}).get("labels") or {}):
                return False
            return fields is None or field_selectors.field_matches(obj, fields, resource.kind)

        return keep if (labels is not None or fields is not None) else None

    async def get(self, request: web.Request, info: RequestInfo,
                  resource: Resource) -> web.Response:
        obj = await self.storage.get(resource, info.namespace, info.name)
        if info.subresource == "status":
            pass
        return self._respond(request, resource, obj)

    async def pod_log(self, request: web.Request, info: RequestInfo,
                      resource: Resource) -> web.StreamResponse:
        """A container's log, from the agent of the pod's node (streamed when following)."""
        pod = await self.storage.get(resource, info.namespace, info.name)
        container = log_container(pod, request.query.get("container", ""))
        options = log_query(request.query)
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name:
            raise status.bad_request(f"pod {info.name} does not have a host assigned")
        node = await self.storage.get(NODES, None, node_name)
        path = container_log_path(info.namespace or "", info.name, container)
        return await self.agents.relay(request, node, path, options)

    async def node_proxy(self, request: web.Request, info: RequestInfo) -> web.StreamResponse:
        """GET nodes/NAME/proxy/PATH: the agent's own endpoints (stats, healthz, logs)."""
        node = await self.storage.get(NODES, None, info.name)
        return await self.agents.relay(request, node, info.subpath, request.query)

    def _respond(self, request: web.Request, resource: Resource, obj: dict,
                 code: int = 200) -> web.Response:
        if http_util.wants_table(request):
            rv = obj.get("metadata", {}).get("resourceVersion", "")
            return http_util.json_response(tables.to_table(resource.kind, [obj], self.now(), rv),
                                           code)
        return http_util.json_response(obj, code)

    async def list(self, request: web.Request, info: RequestInfo,
                   resource: Resource) -> web.Response:
        try:
            limit = int(request.query.get("limit", "0") or 0)
        except ValueError as exc:
            raise status.bad_request("limit must be an integer") from exc
        result = await self.storage.list(
            resource, info.namespace, limit=max(limit, 0),
            continue_token=request.query.get("continue", ""),
            keep=self._filters(request, resource))
        rv = str(result.resource_version)
        if http_util.wants_table(request):
            table = tables.to_table(resource.kind, result.items, self.now(), rv)
            if result.continue_token:
                table["metadata"]["continue"] = result.continue_token
            return http_util.json_response(table)
        meta: dict = {"resourceVersion": rv}
        if result.continue_token:
            meta["continue"] = result.continue_token
            meta["remainingItemCount"] = result.remaining
        for item in result.items:
            item.setdefault("apiVersion", resource.api_version)
            item.setdefault("kind", resource.kind)
        return http_util.json_response({"kind": resource.list_kind,
                                        "apiVersion": resource.api_version,
                                        "metadata": meta, "items": result.items})

    # ---- watch ---------------------------------------------------------------------

    async def watch(self, request: web.Request, info: RequestInfo,
                    resource: Resource) -> web.StreamResponse:
        keep = self._filters(request, resource)
        as_table = http_util.wants_table(request)
        bookmarks = is_true(request.query.get("allowWatchBookmarks"))
        try:
            timeout = float(request.query.get("timeoutSeconds", "1800") or 1800)
        except ValueError as exc:
            raise status.bad_request("timeoutSeconds must be a number") from exc
        rv_text = request.query.get("resourceVersion", "")
        try:
            start = int(rv_text) if rv_text else 0
        except ValueError as exc:
            raise status.bad_request(f"invalid resourceVersion {rv_text!r}") from exc
        prefix = registry.storage_prefix(resource, info.namespace).encode()
        await self.cache.ready.wait()
        initial: list[dict] = []
        if start == 0:
            listed = await self.storage.list(resource, info.namespace, keep=keep)
            initial = listed.items
            start = listed.resource_version
        response = web.StreamResponse(status=200, headers={"Content-Type": http_util.JSON})
        response.enable_chunked_encoding()
        await response.prepare(request)
        writer = _EventWriter(response, resource, as_table, self.now)
        for obj in initial:
            await writer.send("ADDED", obj)
        sub = self.cache.subscribe(prefix, start)
        history = None if sub is not None else _Resumable(self.cache.from_store(prefix, start))
        next_event = sub.next if sub is not None else history.next
        deadline = asyncio.get_running_loop().time() + timeout
        try:
            while True:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                try:
                    # Not wait_for: cancelling an async generator's step would end the
                    # watch at its first idle timeout; this costs no task per event.
                    async with asyncio.timeout(min(remaining, 30.0)):
                        event = await next_event()
                except TimeoutError:
                    if bookmarks:
                        await writer.bookmark(resource, max(self.cache.latest, start))
                    continue
                if event is None:
                    break
                await writer.event(event, keep)
        except status.ApiError as err:
            await writer.error(err)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            if sub is not None:
                self.cache.unsubscribe(sub)
            if history is not None:
                history.cancel()
        try:
            await response.write_eof()
        except ConnectionResetError:
            pass
        return response

    # ---- writes --------------------------------------------------------------------

    async def _check_namespace(self, resource: Resource, namespace: str | None) -> None:
        if not resource.namespaced or namespace is None:
            return
        try:
            ns = await self.storage.get(NAMESPACES, None, namespace)
        except status.ApiError as err:
            if err.code == 404:
                raise status.not_found("namespaces", "", namespace) from err
            raise
        if ns.get("metadata", {}).get("deletionTimestamp"):
            raise status.forbidden_because(
                resource.plural, resource.group, "",
                f"unable to create new content in namespace {namespace} because it is being "
                "terminated")

    def _validate(self, resource: Resource, obj: dict, old: dict | None = None) -> None:
        causes = validation.validate(resource.kind, obj, old)
        if causes:
            name = obj.get("metadata", {}).get("name", "")
            raise status.invalid(resource.kind, resource.group, name, causes)

    async def create(self, request: web.Request, info: RequestInfo,
                     resource: Resource) -> web.Response:
        body = await http_util.read_object(request)
        _check_kind(body, resource)
        _check_types(body, resource)
        ns_in_body = (body.get("metadata") or {}).get("namespace")
        if resource.namespaced and ns_in_body and ns_in_body != info.namespace:
            raise status.bad_request("the namespace of the provided object does not match "
                                     "the namespace sent on the request")
        obj = objects.prepare_create(resource, body, info.namespace, self.now(),
                                     str(uuid.uuid4()))
        return await self._create_prepared(request, info, resource, obj)

    async def _create_prepared(self, request: web.Request, info: RequestInfo,
                               resource: Resource, obj: dict) -> web.Response:
        """Defaulting, admission, validation, then one create transaction."""
        defaults.apply_defaults(resource.kind, obj)
        if resource.kind == "Job":
            defaults.generate_job_selector(obj)
        elif resource.kind == "Pod":
            defaults.admit_pod(obj)
        self._validate(resource, obj)
        await self._check_namespace(resource, info.namespace)
        if request.query.get("dryRun") in ("All", "true", "1"):
            return self._respond(request, resource, obj, 201)
        allocated = False
        if resource.kind == "Service" and self.service_ips is not None:
            await self.service_ips.allocate(obj)
            allocated = True
        try:
            created = await self.storage.create(resource, obj)
        except status.ApiError:
            if allocated:
                await self.service_ips.release(obj)
            raise
        return self._respond(request, resource, created, 201)

    async def update(self, request: web.Request, info: RequestInfo,
                     resource: Resource) -> web.Response:
        body = await http_util.read_object(request)
        _check_kind(body, resource)
        _check_types(body, resource)
        meta = body.get("metadata") or {}
        if meta.get("name") and meta["name"] != info.name:
            raise status.bad_request("the name of the object does not match the name on "
                                     "the URL")
        body.setdefault("metadata", {})["name"] = info.name
        old = await self.storage.get(resource, info.namespace, info.name)
        expected = _resource_version(meta.get("resourceVersion")) or \
            int(old["metadata"]["resourceVersion"])
        new = objects.prepare_update(resource, body, old, info.subresource)
        defaults.apply_defaults(resource.kind, new)
        self._validate(resource, new, old)
        stored = await self.storage.update(resource, new, expected)
        return self._respond(request, resource, await self._finish_if_done(resource, stored))

    async def patch(self, request: web.Request, info: RequestInfo,
                    resource: Resource) -> web.Response:
        patch_type = http_util.content_type(request)
        body = await http_util.read_body(request)
        if patch_type == "application/apply-patch+yaml":
            try:
                await self.storage.get(resource, info.namespace, info.name)
            except status.ApiError as err:
                if err.code != 404:
                    raise
                return await self._apply_create(request, info, resource, body)

        def mutate(current: dict) -> dict:
            try:
                patched = patches.apply_patch(patch_type, current, body, resource.kind)
            except patches.PatchError as exc:
                raise _patch_error(exc) from exc
            _check_patched_types(patched, resource)
            new = objects.prepare_update(resource, patched, current, info.subresource)
            defaults.apply_defaults(resource.kind, new)
            self._validate(resource, new, current)
            return new

        stored = await self.storage.guaranteed_update(resource, info.namespace, info.name,
                                                      mutate)
        return self._respond(request, resource, await self._finish_if_done(resource, stored))

    async def _apply_create(self, request: web.Request, info: RequestInfo,
                            resource: Resource, body: bytes) -> web.Response:
        try:
            obj = patches.apply_patch("application/apply-patch+yaml", {}, body, resource.kind)
        except patches.PatchError as exc:
            raise _patch_error(exc) from exc
        _check_types(obj, resource)
        obj.setdefault("metadata", {})["name"] = info.name
        obj = objects.prepare_create(resource, obj, info.namespace, self.now(),
                                     str(uuid.uuid4()))
        return await self._create_prepared(request, info, resource, obj)

    async def delete(self, request: web.Request, info: RequestInfo,
                     resource: Resource) -> web.Response:
        options = await _delete_options(request)
        grace = options.get("gracePeriodSeconds")
        preconditions = options.get("preconditions") or {}
        current = await self.storage.get(resource, info.namespace, info.name)
        meta = current["metadata"]
        if preconditions.get("resourceVersion") and \
                preconditions["resourceVersion"] != meta["resourceVersion"]:
            raise status.conflict(
                resource.plural, resource.group, info.name,
                f"Precondition failed: ResourceVersion in precondition: "
                f"{preconditions['resourceVersion']}, ResourceVersion in object meta: "
                f"{meta['resourceVersion']}")
        if preconditions.get("uid") and preconditions["uid"] != meta.get("uid"):
            raise status.conflict(
                resource.plural, resource.group, info.name,
                f"Precondition failed: UID in precondition: {preconditions['uid']}, "
                f"UID in object meta: {meta.get('uid', '')}")
        finalizer = _propagation_finalizer(options)
        if finalizer or self._needs_graceful(resource, current, grace):
            period = int(grace if grace is not None else
                         current.get("spec", {}).get("terminationGracePeriodSeconds", 30))
            if resource.kind != "Pod":
                period = 0

            def mark(obj: dict) -> dict | None:
                finalizers = obj["metadata"].setdefault("finalizers", [])
                added = bool(finalizer) and finalizer not in finalizers
                if added:
                    finalizers.append(finalizer)
                elif not finalizers:
                    obj["metadata"].pop("finalizers")
                if obj["metadata"].get("deletionTimestamp") and not added:
                    return None
                return objects.mark_deleting(obj, self.now(), period)

            marked = await self.storage.guaranteed_update(resource, info.namespace, info.name,
                                                          mark)
            return http_util.json_response(await self._finish_if_done(resource, marked))
        deleted = await self.storage.delete(resource, info.namespace, info.name,
                                            int(current["metadata"]["resourceVersion"]))
        if resource.kind == "Service" and self.service_ips is not None:
            await self.service_ips.release(deleted)
        return http_util.json_response(deleted)

    def _needs_graceful(self, resource: Resource, obj: dict, grace: int | None) -> bool:
        """Finalizers and scheduled pods keep an object until someone finishes it."""
        if obj["metadata"].get("finalizers"):
            return True
        if resource.kind == "Namespace":
            return True
        return bool(resource.kind == "Pod" and grace != 0 and obj.get("spec", {}).get("nodeName"))

    async def _finish_if_done(self, resource: Resource, obj: dict) -> dict:
        """An object marked for deletion with no finalizers left is removed now."""
        meta = obj.get("metadata", {})
        if not meta.get("deletionTimestamp") or meta.get("finalizers"):
            return obj
        if resource.kind == "Pod" and obj.get("spec", {}).get("nodeName"):
            return obj  # the node agent confirms with a zero grace period
        if resource.kind == "Namespace":
            return obj  # the namespace controller empties it first
        try:
            return await self.storage.delete(resource, meta.get("namespace"), meta["name"],
                                             int(meta["resourceVersion"]))
        except status.ApiError as err:
            if err.code in (404, 409):
                return obj
            raise

    async def delete_collection(self, request: web.Request, info: RequestInfo,
                                resource: Resource) -> web.Response:
        listed = await self.storage.list(resource, info.namespace,
                                         keep=self._filters(request, resource))
        for obj in listed.items:
            meta = obj["metadata"]
            try:
                await self.storage.delete(resource, meta.get("namespace"), meta["name"])
            except status.ApiError as err:
                if err.code != 404:
                    raise
        return http_util.json_response({"kind": resource.list_kind,
                                        "apiVersion": resource.api_version,
                                        "metadata": {"resourceVersion":
                                                     str(listed.resource_version)},
                                        "items": listed.items})

    # ---- subresources --------------------------------------------------------------

    async def scale(self, request: web.Request, info: RequestInfo,
                    resource: Resource) -> web.Response:
        def selector_of(obj: dict) -> str:
            try:
                sel = selectors.label_selector_from_dict(obj.get("spec", {}).get("selector") or {})
                return sel.to_string()
            except ValueError:
                return ""

        if info.verb == "get":
            obj = await self.storage.get(resource, info.namespace, info.name)
            return http_util.json_response(objects.to_scale(obj, selector_of(obj)))
        if info.verb not in ("update", "patch"):
            raise status.method_not_allowed(resource.plural, resource.group, info.verb)
        patch_type = http_util.content_type(request)
        body = await http_util.read_body(request)

        def mutate(current: dict) -> dict:
            scale = objects.to_scale(current, selector_of(current))
            try:
                if info.verb == "patch":
                    scale = patches.apply_patch(patch_type, scale, body, "Scale")
                else:
                    scale = orjson.loads(body)
            except (patches.PatchError, orjson.JSONDecodeError) as exc:
                raise status.bad_request(str(exc)) from exc
            replicas = (scale.get("spec") or {}).get("replicas", 0)
            if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
                raise status.invalid("Scale", "autoscaling", info.name, [{
                    "reason": "FieldValueInvalid", "field": "spec.replicas",
                    "message": f"Invalid value: {replicas}: must be greater than or equal "
                               "to 0"}])
            return objects.apply_scale(current, scale)

        stored = await self.storage.guaranteed_update(resource, info.namespace, info.name,
                                                      mutate)
        return http_util.json_response(objects.to_scale(stored, selector_of(stored)))

    async def bind(self, request: web.Request, info: RequestInfo,
                   resource: Resource) -> web.Response:
        body = await http_util.read_object(request)
        node = (body.get("target") or {}).get("name", "")
        if not node:
            raise status.invalid("Binding", "", info.name, [{
                "reason": "FieldValueRequired", "field": "target.name",
                "message": "Required value"}])

        def assign(pod: dict) -> dict:
            if pod.get("spec", {}).get("nodeName"):
                raise status.conflict(
                    "pods/binding", "", info.name,
                    f'pod {info.name} is already assigned to node "{pod["spec"]["nodeName"]}"')
            if pod["metadata"].get("deletionTimestamp"):
                raise status.conflict("pods/binding", "", info.name,
                                      f"pod {info.name} is being deleted")
            pod["spec"]["nodeName"] = node
            objects.set_pod_scheduled(pod, self.now())  # as the binding registry does
            return pod

        await self.storage.guaranteed_update(resource, info.namespace, info.name, assign)
        return http_util.json_response(status.status_success(201), 201)

    async def evict(self, request: web.Request, info: RequestInfo,
                    resource: Resource) -> web.Response:
        await http_util.read_body(request)
        current = await self.storage.get(resource, info.namespace, info.name)
        if current.get("spec", {}).get("nodeName"):
            await self.storage.guaranteed_update(
                resource, info.namespace, info.name,
                lambda obj: None if obj["metadata"].get("deletionTimestamp") else
                objects.mark_deleting(obj, self.now(), int(
                    obj.get("spec", {}).get("terminationGracePeriodSeconds", 30))))
        else:
            await self.storage.delete(resource, info.namespace, info.name)
        return http_util.json_response(status.status_success(201), 201)


def _propagation_finalizer(options: dict) -> str:
    """The finalizer a delete's propagation policy asks for (Background needs none: the
    garbage collector removes dependents once the owner is gone)."""
    policy = options.get("propagationPolicy")
    if policy == "Foreground":
        return "foregroundDeletion"
    if policy == "Orphan" or (policy is None and options.get("orphanDependents") is True):
        return "orphan"
    return ""


def _patch_error(exc: patches.PatchError) -> status.ApiError:
    if exc.code == 415:
        return status.unsupported_media_type(accepted=status.PATCH_MEDIA_TYPES)
    if exc.code == 422:
        err = status.bad_request(exc.message)
        err.status.update(code=422, reason="Invalid")
        err.code = 422
        return err
    return status.bad_request(exc.message)


def _check_types(body: dict, resource: Resource) -> None:
    """400 for a body Go could not decode into the kind's struct (apiserver/typecheck)."""
    problem = typecheck.check(resource.kind, body)
    if problem:
        raise status.bad_request(f'{resource.kind} in version "{resource.version}" cannot be '
                                 f"handled as a {resource.kind}: {problem}")


def _check_patched_types(patched: dict, resource: Resource) -> None:
    """A patch whose result does not decode: 422 on the field `patch`, as Kubernetes."""
    problem = typecheck.check(resource.kind, patched)
    if problem:
        quoted = orjson.dumps(orjson.dumps(patched).decode()).decode()  # Go's %q
        raise status.invalid("", "", "", [{"reason": "FieldValueInvalid", "field": "patch",
                                           "message": f"Invalid value: {quoted}: {problem}"}])


def _resource_version(text: object) -> int:
    """metadata.resourceVersion of an update (0: none given); 400 if not a revision."""
    if text in (None, ""):
        return 0
    try:
        value = int(str(text))
    except ValueError:
        value = -1
    if value < 0:
        raise status.bad_request(f"invalid resourceVersion {text!r}: it must be a "
                                 "resourceVersion read from this server")
    return value


def _check_kind(body: dict, resource: Resource) -> None:
    kind = body.get("kind")
    api_version = body.get("apiVersion")
    if kind and kind != resource.kind:
        raise status.bad_request(f"the kind {kind!r} of the object does not match "
                                 f"{resource.kind!r}, the kind of the URL")
    if api_version and api_version != resource.api_version:
        raise status.bad_request(f"the apiVersion {api_version!r} of the object does not "
                                 f"match {resource.api_version!r}")


async def _delete_options(request: web.Request) -> dict:
    body = await http_util.read_body(request)
    options: dict = {}
    if body.strip():
        if http_util.content_type(request) == "application/vnd.kubernetes.protobuf":
            return {}
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise status.bad_request(f"invalid DeleteOptions: {exc}") from exc
        if isinstance(parsed, dict):
            options = parsed
    grace = request.query.get("gracePeriodSeconds")
    if grace is not None:
        try:
            options["gracePeriodSeconds"] = int(grace)
        except ValueError as exc:
            raise status.bad_request("gracePeriodSeconds must be an integer") from exc
    return options


class _Resumable:
    """The next item of an async iterator, resumable after a timeout: the pending step
    is shielded, since cancelling an async generator's step would end it."""

    def __init__(self, events: AsyncIterator[WatchEvent]) -> None:
        self._events = events.__aiter__()
        self._step: asyncio.Future[WatchEvent] | None = None

    async def next(self) -> WatchEvent | None:
        if self._step is None:
            self._step = asyncio.ensure_future(self._events.__anext__())
        try:
            event = await asyncio.shield(self._step)
        except StopAsyncIteration:
            return None
        self._step = None
        return event

    def cancel(self) -> None:
        if self._step is not None and not self._step.done():
            self._step.cancel()


class _EventWriter:
    """Writes watch events, one JSON line per chunk, as Tables when asked."""

    def __init__(self, response: web.StreamResponse, resource: Resource, as_table: bool,
                 now) -> None:
        self.response = response
        self.resource = resource
        self.as_table = as_table
        self.now = now

    async def send(self, kind: str, obj: dict, lines: dict | None = None) -> None:
        """One event; `lines` (a WatchEvent's) shares the encoded line between watches."""
        key = (kind, self.resource.api_version, self.resource.kind)
        line = lines.get(key) if lines is not None and not self.as_table else None
        if line is None:
            obj.setdefault("apiVersion", self.resource.api_version)
            obj.setdefault("kind", self.resource.kind)
            if self.as_table:
                rv = obj.get("metadata", {}).get("resourceVersion", "")
                obj = tables.to_table(self.resource.kind, [obj], self.now(), rv)
            line = orjson.dumps({"type": kind, "object": obj}) + b"\n"
            if lines is not None and not self.as_table:
                lines[key] = line
        await self.response.write(line)

    async def event(self, event: WatchEvent, keep) -> None:
        """Selectors turn an object leaving the selection into DELETED, entering into ADDED."""
        now_in = keep is None or (event.type != "DELETED" and keep(event.obj))
        if event.type == "DELETED":
            if keep is None or keep(event.obj):
                await self.send("DELETED", event.obj, event.lines)
            return
        was_in = event.prev is not None and (keep is None or keep(event.prev))
        if keep is None:
            await self.send(event.type, event.obj, event.lines)
        elif now_in and was_in:
            await self.send("MODIFIED", event.obj, event.lines)
        elif now_in:
            await self.send("ADDED", event.obj, event.lines)
        elif was_in:
            await self.send("DELETED", event.obj, event.lines)

    async def bookmark(self, resource: Resource, revision: int) -> None:
        obj = {"kind": resource.kind, "apiVersion": resource.api_version,
               "metadata": {"resourceVersion": str(revision)}}
        await self.response.write(orjson.dumps({"type": "BOOKMARK", "object": obj}) + b"\n")

    async def error(self, err: status.ApiError) -> None:
        await self.response.write(orjson.dumps({"type": "ERROR", "object": err.status}) + b"\n")

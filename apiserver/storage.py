"""Kubernetes objects in the store, with optimistic concurrency.

Each object lives at `/registry/<plural>/<namespace>/<name>` as its JSON, without
`metadata.resourceVersion`: that is the key's mod_revision, filled in on every read.
Creates are transactions on "the key does not exist yet", updates and deletes on "the
key's mod_revision is still the one the client read", so two writers can never both
win. Only the store's etcd-compatible API is used, so real etcd can stand in for it.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson

from apiserver import registry, status
from apiserver.registry import Resource
from store import errors as store_errors
from store.client import Compare, Op, StoreClient, StoreUnavailable, prefix_range_end
from store.kv_types import KeyValue

MAX_UPDATE_RETRIES = 16


def decode(kv: KeyValue) -> dict:
    """An object as read from the store, with its resourceVersion."""
    obj = orjson.loads(kv.value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(kv.mod_revision)
    return obj


def encode(obj: dict) -> bytes:
    meta = obj.get("metadata", {})
    if "resourceVersion" not in meta:
        return orjson.dumps(obj)
    stripped = dict(obj)
    stripped["metadata"] = {k: v for k, v in meta.items() if k != "resourceVersion"}
    return orjson.dumps(stripped)


@dataclass
class ListResult:
    items: list[dict]
    resource_version: int
    continue_token: str = ""
    remaining: int = 0


def _parse_continue(token: str) -> tuple[int, bytes]:
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token.encode() + b"=="))
        return int(data["rv"]), base64.b64decode(data["start"])
    except (ValueError, KeyError, TypeError) as exc:
        raise status.bad_request(f"invalid continue token: {token!r}") from exc


def _make_continue(revision: int, next_key: bytes) -> str:
    raw = orjson.dumps({"v": 1, "rv": revision, "start": base64.b64encode(next_key).decode()})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def unavailable(exc: Exception) -> status.ApiError:
    return status.service_unavailable(f"the store is unavailable: {exc}")


class Storage:
    """CRUD of objects over a StoreClient; every failure becomes a Kubernetes Status."""

    def __init__(self, client: StoreClient) -> None:
        self.client = client

    async def guard(self, call: Awaitable):
        try:
            return await call
        except StoreUnavailable as exc:
            raise unavailable(exc) from exc
        except store_errors.EtcdError as exc:
            if exc.code == store_errors.GrpcCode.OUT_OF_RANGE:
                raise status.gone(f"too old resource version: {exc.message}") from exc
            if exc.code in (store_errors.GrpcCode.UNAVAILABLE, store_errors.GrpcCode.UNKNOWN):
                raise unavailable(exc) from exc
            raise status.internal_error(f"store: {exc.message}") from exc

    async def current_revision(self) -> int:
        result = await self.guard(self.client.range(b"/registry/", count_only=True))
        return result.revision

    async def get(self, resource: Resource, namespace: str | None, name: str) -> dict:
        key = registry.storage_key(resource, namespace, name).encode()
        kv = await self.guard(self.client.get(key))
        if kv is None:
            raise status.not_found(resource.plural, resource.group, name)
        return decode(kv)

    async def create(self, resource: Resource, obj: dict) -> dict:
        meta = obj["metadata"]
        key = registry.storage_key(resource, meta.get("namespace"), meta["name"]).encode()
        result = await self.guard(
            self.client.txn([Compare.create_revision(key, "=", 0)], [Op.put(key, encode(obj))], [])
        )
        if not result.succeeded:
            raise status.already_exists(resource.plural, resource.group, meta["name"])
        created = dict(obj)
        created["metadata"] = dict(meta, resourceVersion=str(result.revision))
        return created

    async def update(self, resource: Resource, obj: dict, expected_revision: int) -> dict:
        """Replace the object if it is still at `expected_revision` (else 409 or 404)."""
        meta = obj["metadata"]
        key = registry.storage_key(resource, meta.get("namespace"), meta["name"]).encode()
        result = await self.guard(
            self.client.txn(
                [Compare.mod_revision(key, "=", expected_revision)],
                [Op.put(key, encode(obj))],
                [Op.get(key)],
            )
        )
        if not result.succeeded:
            current = result.responses[0].kvs if result.responses else []
            if not current:
                raise status.not_found(resource.plural, resource.group, meta["name"])
            raise status.conflict(resource.plural, resource.group, meta["name"])
        updated = dict(obj)
        updated["metadata"] = dict(meta, resourceVersion=str(result.revision))
        return updated

    async def guaranteed_update(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        mutate: Callable[[dict], dict | None],
    ) -> dict:
        """Read, apply `mutate`, write back on that revision; retry on conflict.

        `mutate` returns the new object, or None to leave the object as it is.
        """
        for _ in range(MAX_UPDATE_RETRIES):
            current = await self.get(resource, namespace, name)
            revision = int(current["metadata"]["resourceVersion"])
            updated = mutate(current)
            if updated is None:
                return current
            try:
                return await self.update(resource, updated, revision)
            except status.ApiError as err:
                if err.code != 409:
                    raise
        raise status.conflict(resource.plural, resource.group, name)

    async def delete(
        self, resource: Resource, namespace: str | None, name: str, expected_revision: int = 0
    ) -> dict:
        key = registry.storage_key(resource, namespace, name).encode()
        compare = (
            [Compare.mod_revision(key, "=", expected_revision)]
            if expected_revision
            else [Compare.create_revision(key, ">", 0)]
        )
        result = await self.guard(
            self.client.txn(compare, [Op.delete(key, prev_kv=True)], [Op.get(key)])
        )
        if not result.succeeded:
            current = result.responses[0].kvs if result.responses else []
            if not current:
                raise status.not_found(resource.plural, resource.group, name)
            raise status.conflict(resource.plural, resource.group, name)
        prev = result.responses[0].prev_kvs
        if not prev:
            raise status.not_found(resource.plural, resource.group, name)
        obj = decode(prev[0])
        obj["metadata"]["resourceVersion"] = str(result.revision)
        return obj

    async def list(
        self,
        resource: Resource,
        namespace: str | None,
        *,
        limit: int = 0,
        continue_token: str = "",
        revision: int = 0,
        keep: Callable[[dict], bool] | None = None,
    ) -> ListResult:
        """One page of objects, all from one revision so that pages fit together."""
        prefix = registry.storage_prefix(resource, namespace).encode()
        end = prefix_range_end(prefix)
        start = prefix
        if continue_token:
            revision, start = _parse_continue(continue_token)
        items: list[dict] = []
        while True:
            chunk = max(limit - len(items), 0) if limit else 0
            if limit and keep is not None:
                chunk = max(chunk, 100)
            try:
                result = await self.guard(
                    self.client.range(start, end, limit=chunk, revision=revision)
                )
            except status.ApiError as err:
                raise _maybe_expired(err, continue_token) from err
            revision = revision or result.revision
            last_key = b""
            for kv in result.kvs:
                last_key = kv.key
                obj = decode(kv)
                if keep is None or keep(obj):
                    items.append(obj)
                    if limit and len(items) >= limit:
                        break
            if limit and len(items) >= limit:
                start = last_key + b"\0"
                remaining = await self.guard(
                    self.client.range(start, end, count_only=True, revision=revision)
                )
                if not remaining.count:
                    return ListResult(items, revision)
                return ListResult(items, revision, _make_continue(revision, start), remaining.count)
            if not result.more or not result.kvs:
                return ListResult(items, revision)
            start = last_key + b"\0"


def _maybe_expired(err: status.ApiError, continue_token: str) -> status.ApiError:
    if continue_token and err.code == 410:
        return status.gone(
            "The provided continue parameter is too old to display a "
            "consistent list result. You can start a new list without the "
            "continue parameter."
        )
    return err

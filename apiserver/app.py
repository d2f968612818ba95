"""The apiserver's aiohttp application: routing, security, and the non-resource paths.

Every request is parsed into a RequestInfo, authenticated, authorized, then handed to
the resource handlers or answered here (discovery, OpenAPI, health). Anything that goes
wrong becomes a Kubernetes Status; a bug becomes a 500 Status, never a traceback page.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

import orjson
from aiohttp import web

from apiserver import discovery, http_util, registry, request_info, status
from apiserver.request_info import RequestInfo
from apiserver.resources import ResourceHandlers

log = logging.getLogger(__name__)

PUBLIC_PATHS = {"/healthz", "/livez", "/readyz", "/version", "/version/"}


class Security(Protocol):
    """Who is asking, and may they: implemented by apiserver.security."""

    def authenticate(self, request: web.Request) -> object | None: ...

    async def authorize(self, user: object, info: RequestInfo,
                        request: web.Request) -> None: ...


ReadyCheck = Callable[[], Awaitable[bool]]


def build_app(handlers: ResourceHandlers, security: Security | None,
              ready: ReadyCheck, server_address: str) -> web.Application:
    app = web.Application(client_max_size=http_util.MAX_BODY + 1024)

    async def dispatch(request: web.Request) -> web.StreamResponse:
        try:
            return await _dispatch(request)
        except status.ApiError as err:
            return http_util.error_response(err)
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception as exc:  # noqa: BLE001 (a bug must still answer with a Status)
            log.exception("internal error serving %s %s", request.method, request.path)
            return http_util.error_response(status.internal_error(str(exc)))

    async def _dispatch(request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        info = request_info.parse(request.method, path, request.query)
        user = None
        if security is not None:
            user = security.authenticate(request)
            if user is None and path not in PUBLIC_PATHS:
                raise status.unauthorized()
            await security.authorize(user, info, request)
        if not info.is_resource:
            return await _non_resource(request, path, info)
        resource = registry.lookup(info.group, info.version, info.plural)
        if resource is None:
            raise status.not_found_path()
        return await handlers.handle(request, info, resource)

    async def _non_resource(request: web.Request, path: str,
                            info: RequestInfo) -> web.StreamResponse:
        if path in ("/healthz", "/livez"):
            return web.Response(text="ok", content_type="text/plain")
        if path == "/readyz":
            if await ready():
                return web.Response(text="ok", content_type="text/plain")
            return web.Response(text="[-]etcd failed: the store does not answer\n"
                                     "readyz check failed\n", status=500,
                                content_type="text/plain")
        if request.method != "GET":
            raise status.not_found_path()
        if path == "/version":
            return http_util.json_response(discovery.version_info())
        if path == "/openapi/v2":
            return web.Response(body=discovery.openapi_v2_protobuf(),
                                headers={"Content-Type": "application/octet-stream"})
        aggregated = discovery.wants_aggregated(request.headers.get("Accept", ""))
        if path == "/api":
            if aggregated:
                return _aggregated(discovery.api_group_discovery_list(True, aggregated),
                                   aggregated)
            return http_util.json_response(discovery.api_versions(server_address))
        if path == "/apis":
            if aggregated:
                return _aggregated(discovery.api_group_discovery_list(False, aggregated),
                                   aggregated)
            return http_util.json_response(discovery.api_group_list())
        if info.version and len(info.parts) in (2, 3):
            body = discovery.api_resource_list(info.group, info.version)
            if body is not None:
                return http_util.json_response(body)
        raise status.not_found_path()

    app.router.add_route("*", "/{tail:.*}", dispatch)
    return app


def _aggregated(body: dict, content_type: str) -> web.Response:
    return web.Response(body=orjson.dumps(body),
                        headers={"Content-Type": content_type, "Vary": "Accept"})

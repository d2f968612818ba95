"""Reading requests and writing responses the way Kubernetes clients expect.

Responses carry `Content-Type: application/json` exactly (no charset: lightkube only
recognises errors with that exact header). Request bodies without a Content-Type are
JSON (the Python client sends none); kubectl 1.32+ may send protobuf for `create`.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from apiserver import protobuf, status

MAX_BODY = 3 * 1024 * 1024  # Kubernetes' default request size limit

JSON = "application/json"
TABLE_MARKER = "as=Table"


def json_response(obj: dict, code: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(obj), status=code, headers={"Content-Type": JSON})


def error_response(err: status.ApiError) -> web.Response:
    return json_response(err.status, err.code)


def wants_table(request: web.Request) -> bool:
    return TABLE_MARKER in request.headers.get("Accept", "")


async def read_body(request: web.Request) -> bytes:
    """The whole body (cached by aiohttp, so security checks and handlers share it)."""
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise status.too_large() from exc
    if len(body) > MAX_BODY:
        raise status.too_large()
    return body


def content_type(request: web.Request) -> str:
    raw = request.headers.get("Content-Type", "")
    return raw.split(";", 1)[0].strip().lower()


async def read_object(request: web.Request) -> dict:
    """The request body as an object: JSON by default, protobuf when kubectl sends it."""
    body = await read_body(request)
    kind = content_type(request)
    if kind == "application/vnd.kubernetes.protobuf":
        try:
            return protobuf.decode(body)
        except protobuf.ProtobufError as exc:
            raise status.unsupported_media_type(message=str(exc)) from exc
    if kind not in ("", JSON, "application/octet-stream", "text/plain", "*/*", "application/yaml"):
        raise status.unsupported_media_type(kind)
    if not body.strip():
        raise status.bad_request("the request body is empty")
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise status.bad_request(
            f"the body of the request was in an unknown format: {exc}"
        ) from exc
    if not isinstance(obj, dict):
        raise status.bad_request("the request body must be a JSON object")
    return obj

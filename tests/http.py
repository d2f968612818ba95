"""Tiny synchronous HTTP helpers for tests that want the raw status, headers and bytes.

Standard library only, so a test can check exactly what went over the wire without a
client library interpreting it. Non-2xx answers are returned, not raised; a refused or
timed-out connection raises OSError (urllib's URLError is one).
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from email.message import Message
from typing import Any

DEFAULT_TIMEOUT = 10.0


def request(
    url: str,
    path: str,
    *,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> tuple[int, Message, bytes]:
    req = urllib.request.Request(
        url.rstrip("/") + path, data=body, method=method, headers=headers or {}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.headers, err.read()


def post_json(
    url: str, path: str, body: Any, *, timeout: float = DEFAULT_TIMEOUT
) -> tuple[int, Message, bytes]:
    """POST `body` as JSON to `url` + `path`; return (status, headers, raw body)."""
    data = json.dumps(body).encode()
    return request(
        url,
        path,
        method="POST",
        body=data,
        headers={"Content-Type": "application/json"},
        timeout=timeout,
    )


def get(url: str, path: str, *, timeout: float = DEFAULT_TIMEOUT) -> tuple[int, Message, bytes]:
    return request(url, path, timeout=timeout)


def b64(data: str | bytes) -> str:
    """Encode as the v3 JSON gateway wants keys and values: padded standard base64."""
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text)

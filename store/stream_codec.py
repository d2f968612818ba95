"""Framing for the gateway's streaming calls (watch, lease keepalive).

A streaming request body is a sequence of JSON objects (etcd's gateway reads them one
after another, whitespace between them optional); a streaming response is one
`{"result": ...}` object per line, and each line must go out as its own HTTP chunk.
"""

from __future__ import annotations

import json

import orjson

from store import codec, errors

_decoder = json.JSONDecoder()


def split_objects(buffer: str) -> tuple[list[str], str]:
    """Split complete JSON objects off the front of `buffer`; return them and the rest.

    Raises EtcdError (code 3) when the buffer starts with something that is not JSON.
    """
    objects: list[str] = []
    pos = 0
    length = len(buffer)
    while True:
        while pos < length and buffer[pos] in " \t\r\n":
            pos += 1
        if pos >= length:
            return objects, ""
        try:
            _, end = _decoder.raw_decode(buffer, pos)
        except json.JSONDecodeError as exc:
            if exc.pos >= length or _is_truncated(buffer, pos):
                return objects, buffer[pos:]
            raise errors.invalid_argument(f"invalid character in stream: {exc.msg}") from exc
        objects.append(buffer[pos:end])
        pos = end


def _is_truncated(buffer: str, pos: int) -> bool:
    """True when the text from `pos` could still become valid JSON with more input."""
    depth = 0
    in_string = False
    escaped = False
    for ch in buffer[pos:]:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth < 0:
                return False
    return depth > 0 or in_string


def decode_all(message: str, body: bytes) -> list[dict]:
    """Decode every request object of a complete streaming body."""
    return list(codec.decode_stream(message, body))


def encode_result(message: str, value: dict) -> bytes:
    """One line of a streaming response."""
    return orjson.dumps({"result": codec.encode_obj(message, value)}) + b"\n"


def encode_error_line(err: errors.EtcdError) -> bytes:
    """An error on a stream: etcd's gateway writes it as the body, code 2 style."""
    return b'{"error":' + codec.encode_error(err) + b"}\n"

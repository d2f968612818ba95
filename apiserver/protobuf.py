"""Decoding the protobuf request bodies kubectl >= 1.32 sends, into the JSON-equivalent dict.

kubectl 1.32 and 1.33 send `Content-Type: application/vnd.kubernetes.protobuf` for the
`create namespace|deployment|configmap|secret|service|job|serviceaccount` generators
and for drain's DELETE fallback; answering 415 does not make them fall back to JSON.
The envelope is

    b"k8s\\x00" + runtime.Unknown{1: TypeMeta{1: apiVersion, 2: kind},
                                  2: raw, 3: contentEncoding, 4: contentType}

where `raw` is the typed object encoded with the field numbers of k8s.io/api's
`generated.proto`. This module is a small protobuf wire decoder driven by the per-kind
field tables in `protobuf_schemas`; fields not in the tables are skipped.

Go's encoder writes every non-pointer field, zero values included, while Go's JSON
encoder omits most of them, so a zero scalar is dropped unless the table marks the
field as a pointer (`replicas: 0` must survive). Empty nested messages stay `{}` as in
Go's JSON (`"resources": {}`, `"status": {}`); an unset `creationTimestamp` (JSON null)
is dropped. The result equals what kubectl <= 1.31 sends as JSON for the same command.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from apiserver.protobuf_schemas import KINDS, Schema

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"
# runtime.Unknown, from k8s.io/apimachinery/pkg/runtime/generated.proto.
_UNKNOWN: Schema = {
    1: ("typeMeta", "m", {1: ("apiVersion", "s", None), 2: ("kind", "s", None)}),
    2: ("raw", "b", None),
    3: ("contentEncoding", "s", None),
    4: ("contentType", "s", None),
}

VARINT, FIXED64, BYTES, FIXED32 = 0, 1, 2, 5


class ProtobufError(ValueError):
    """The body is not a protobuf object we can decode."""


def decode(body: bytes) -> dict[str, Any]:
    """The object in a `application/vnd.kubernetes.protobuf` body, as a JSON-style dict."""
    if not body.startswith(MAGIC):
        raise ProtobufError("the protobuf body does not start with the Kubernetes magic number")
    envelope = _message(memoryview(body)[len(MAGIC) :], _UNKNOWN, raw_bytes=True)
    type_meta = envelope.get("typeMeta") or {}
    kind, api_version = type_meta.get("kind", ""), type_meta.get("apiVersion", "")
    if envelope.get("contentEncoding"):
        raise ProtobufError(
            f"protobuf bodies with content encoding {envelope['contentEncoding']!r} are not supported"
        )
    schema = KINDS.get(kind)
    if schema is None:
        raise ProtobufError(
            f"protobuf bodies for {kind or 'this kind'} are not supported; use JSON"
        )
    obj: dict[str, Any] = {"kind": kind, "apiVersion": api_version}
    obj.update(_message(memoryview(envelope.get("raw") or b""), schema))
    return obj


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ProtobufError("truncated protobuf varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ProtobufError("protobuf varint is too long")


def fields(buf: memoryview) -> Iterator[tuple[int, int, int | memoryview]]:
    """(field number, wire type, value) for every field of one encoded message."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ProtobufError("protobuf field number 0 is invalid")
        if wire == VARINT:
            value, pos = _varint(buf, pos)
            yield number, wire, value
        elif wire == BYTES:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise ProtobufError("truncated protobuf field")
            yield number, wire, buf[pos : pos + size]
            pos += size
        elif wire in (FIXED64, FIXED32):
            width = 8 if wire == FIXED64 else 4
            if pos + width > len(buf):
                raise ProtobufError("truncated protobuf field")
            yield number, wire, int.from_bytes(buf[pos : pos + width], "little")
            pos += width
        else:
            raise ProtobufError(f"unsupported protobuf wire type {wire}")


def _signed(value: int) -> int:
    """int32/int64 fields carry negatives as 64-bit two's complement varints."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _expect(value: int | memoryview, wire: int, want: int, name: str) -> Any:
    if wire != want:
        raise ProtobufError(f"protobuf field {name!r} has wire type {wire}, expected {want}")
    return value


def _text(data: memoryview, name: str) -> str:
    try:
        return bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        raise ProtobufError(f"protobuf field {name!r} is not valid UTF-8") from None


def _scalar(code: str, wire: int, value: int | memoryview, name: str) -> Any:
    if code in ("s", "s?"):
        return _text(_expect(value, wire, BYTES, name), name)
    if code == "b":
        return base64.b64encode(bytes(_expect(value, wire, BYTES, name))).decode("ascii")
    if code in ("i", "i?"):
        return _signed(_expect(value, wire, VARINT, name))
    if code in ("t", "t?"):
        return bool(_expect(value, wire, VARINT, name))
    raise ProtobufError(f"unknown schema code {code!r} for {name!r}")


def _map_entry(data: memoryview, value_code: str, name: str) -> tuple[str, Any]:
    key = ""
    value: Any = None
    for number, wire, item in fields(data):
        if number == 1:
            key = _text(_expect(item, wire, BYTES, name), name)
        elif number == 2:
            if value_code == "q":
                value = _quantity(_expect(item, wire, BYTES, name))
            else:
                value = _scalar(value_code, wire, item, name)
    if value is None:  # an absent value is the zero value
        value = {"s": "", "b": "", "q": "0"}.get(value_code, 0)
    return key, value


def _quantity(data: memoryview) -> str:
    return _message(data, {1: ("string", "s?", None)}).get("string", "0")


def _int_or_string(data: memoryview) -> int | str:
    decoded = _message(
        data, {1: ("type", "i?", None), 2: ("intVal", "i?", None), 3: ("strVal", "s?", None)}
    )
    if decoded.get("type", 0) == 1:
        return decoded.get("strVal", "")
    return decoded.get("intVal", 0)


def _time(data: memoryview) -> str | None:
    decoded = _message(data, {1: ("seconds", "i?", None), 2: ("nanos", "i?", None)})
    if not decoded.get("seconds") and not decoded.get("nanos"):
        return None
    when = datetime.fromtimestamp(decoded.get("seconds", 0), UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _message(data: memoryview, schema: Schema, raw_bytes: bool = False) -> dict[str, Any]:
    """Decode one message; zero scalars are dropped unless the field is a pointer (`?`)."""
    out: dict[str, Any] = {}
    for number, wire, value in fields(data):
        spec = schema.get(number)
        if spec is None:
            continue
        name, code, sub = spec
        if code == "m":
            out[name] = _message(_expect(value, wire, BYTES, name), sub or {})
        elif code == "I":
            out.update(_message(_expect(value, wire, BYTES, name), sub or {}))
        elif code == "rm":
            out.setdefault(name, []).append(_message(_expect(value, wire, BYTES, name), sub or {}))
        elif code == "rs":
            out.setdefault(name, []).append(_scalar("s", wire, value, name))
        elif code in ("ms", "mb", "mq"):
            key, item = _map_entry(_expect(value, wire, BYTES, name), code[1], name)
            out.setdefault(name, {})[key] = item
        elif code in ("ios", "ios?"):
            number_or_name = _int_or_string(_expect(value, wire, BYTES, name))
            if number_or_name not in (0, "") or code == "ios?":
                out[name] = number_or_name
        elif code == "q":
            out[name] = _quantity(_expect(value, wire, BYTES, name))
        elif code == "time":
            when = _time(_expect(value, wire, BYTES, name))
            if when is None:
                out.pop(name, None)
            else:
                out[name] = when
        elif code == "b" and raw_bytes:
            out[name] = bytes(_expect(value, wire, BYTES, name))
        else:
            decoded = _scalar(code, wire, value, name)
            if decoded or code.endswith("?"):
                out[name] = decoded
            else:
                out.pop(name, None)
    return out

"""JWS compact serialization (RFC 7515) for ES256 and RS256, on `cryptography` alone.

A token is `base64url(header) . base64url(payload) . base64url(signature)` with no
padding; the signature covers the first two parts exactly as sent. Only what service
account tokens need is here, and every choice is the strict one:

- the algorithm comes from the key, never from the token: a header naming another
  algorithm (including `none`) is refused, which closes the classic alg-confusion hole;
- ES256 signatures are the raw 64-byte r||s of RFC 7518, not DER;
- base64url outside the URL-safe alphabet, JSON with duplicate keys, and headers with
  `crit` are refused rather than interpreted.

`kid` is Kubernetes' key id: base64url(SHA-256(DER SubjectPublicKeyInfo)). Verification
tries the keys whose kid matches first, then (as Kubernetes does) any other key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey

MAX_TOKEN_BYTES = 16 * 1024  # far above any real token; bounds the work per request
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
_P256_BYTES = 32


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict, canonical, unpadded base64url: ValueError on anything else.

    Canonical means the unused low bits of the last character are zero, so each byte
    string has exactly one encoding and a token cannot be varied while staying valid
    (a cache keyed by the token string then cannot be bypassed).
    """
    if not _B64URL.match(text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if b64url_encode(data) != text:
        raise ValueError("not canonical base64url")
    return data


def key_id(public_key: PublicKey) -> str:
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return b64url_encode(hashlib.sha256(der).digest())


def algorithm(key: PrivateKey | PublicKey) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise ValueError(f"ES256 needs a P-256 key, not {key.curve.name}")
        return "ES256"
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return "RS256"
    raise ValueError(f"unsupported key type {type(key).__name__}")


def _json(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


def sign(claims: dict[str, Any], key: PrivateKey) -> str:
    """A compact JWS over `claims`, with `alg`, `kid` and `typ: JWT` in the header."""
    alg = algorithm(key)
    header = {"alg": alg, "kid": key_id(key.public_key()), "typ": "JWT"}
    signing_input = f"{b64url_encode(_json(header))}.{b64url_encode(_json(claims))}"
    data = signing_input.encode("ascii")
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        sig = r.to_bytes(_P256_BYTES, "big") + s.to_bytes(_P256_BYTES, "big")
    else:
        sig = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url_encode(sig)}"


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate JSON key {k!r}")
        out[k] = v
    return out


def _decode_json(part: str) -> dict[str, Any]:
    obj = json.loads(b64url_decode(part), object_pairs_hook=_no_duplicates)
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    return obj


def parse(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes] | None:
    """(header, claims, signing input, signature) without checking anything; None if malformed."""
    if len(token) > MAX_TOKEN_BYTES:
        return None
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header = _decode_json(parts[0])
        claims = _decode_json(parts[1])
        signature = b64url_decode(parts[2])
    except (ValueError, UnicodeDecodeError):  # json.JSONDecodeError is a ValueError
        return None
    return header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), signature


def _signature_valid(key: PublicKey, alg: str, data: bytes, signature: bytes) -> bool:
    try:
        if algorithm(key) != alg:
            return False
        if isinstance(key, ec.EllipticCurvePublicKey):
            if len(signature) != 2 * _P256_BYTES:
                return False
            r = int.from_bytes(signature[:_P256_BYTES], "big")
            s = int.from_bytes(signature[_P256_BYTES:], "big")
            key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))
        else:
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def verify(token: str, public_keys: Sequence[PublicKey]) -> dict[str, Any] | None:
    """The claims if some key's signature checks out; None otherwise. Claims unchecked."""
    parsed = parse(token)
    if parsed is None:
        return None
    header, claims, data, signature = parsed
    alg = header.get("alg")
    if alg not in ("ES256", "RS256") or "crit" in header:
        return None
    kid = header.get("kid")
    ordered = sorted(public_keys, key=lambda k: key_id(k) != kid)  # matching kid first
    for key in ordered:
        if _signature_valid(key, alg, data, signature):
            return claims
    return None

"""Discovery bodies: what kubectl and the client libraries learn before their first request.

Every function here renders apiserver/registry.py; none does I/O, so the handlers only
pick a builder by path and Accept header and write the result. The shapes are the ones
measured against kubectl 1.20 and 1.27-1.33 (shared/anchors/kubectl/REQUIREMENTS.md
§2, §3, §12) and checked against Kubernetes 1.32's own discovery.

Serving rules the handlers must keep (each one broke a real client when violated):

- Legacy bodies (`/api`, `/apis`, `/api/v1`, `/apis/G/V`, `/version`) go out with
  `Content-Type: application/json` exactly, no charset (REQUIREMENTS §1.2).
- `/api` and `/apis` answer aggregated discovery only when `wants_aggregated()` finds it
  in the Accept header, and then with the Content-Type it returned: client-go picks its
  decoder from that header's parameters (g, v, as), not from the body, and falls back
  to legacy discovery on plain `application/json`. Add `Vary: Accept`, since one URL
  has two representations.
- `/openapi/v2` answers 200 with `openapi_v2_protobuf()` and Content-Type
  `application/octet-stream`. A JSON body fails kubectl's protobuf parser, a 404 fails
  `create -f`/`apply -f`, and the spec's own media type
  (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`) breaks Go's mime
  parser (§3).
- `/openapi/v3` answers 404 (a NotFound Status). kubectl 1.27+ then falls back to
  `/openapi/v2`; serving a v3 document would commit us to per-group v3 schemas.

Why v1.32 (`version_info`): /usr/bin/kubectl here is Google's dispatcher, which runs
kubectl 1.<server minor> for minors 27-33 and 1.32 for anything else (§12). Any
kubectl ≥ 1.32 sends protobuf bodies for the `create <kind>` generators (§1.3), so the
apiserver must decode those whatever we report: kubelite ships that decoder
(apiserver/protobuf.py). Reporting an older minor to dodge protobuf would only hide the
problem for the dispatcher while every user's own kubectl 1.32+ still sends protobuf,
and would misdescribe the API we serve, which is 1.32's (policy/v1 eviction, aggregated
discovery v2, singular names in discovery). kr8s also warns below 1.28 (§11).
"""

from __future__ import annotations

import base64
import hashlib
import platform
import sys
from typing import Any

from apiserver import registry

MAJOR = "1"
MINOR = "32"
# "+kubelite" is semver build metadata, which version comparisons ignore: a "-kubelite"
# suffix would make this a pre-release that sorts below v1.32.0 and fails constraints
# such as Helm's `kubeVersion: ">=1.32.0"` (k3s uses "+k3s1" for the same reason).
GIT_VERSION = f"v{MAJOR}.{MINOR}.0+kubelite"

JSON_CONTENT_TYPE = "application/json"
OPENAPI_V2_CONTENT_TYPE = "application/octet-stream"
OPENAPI_V3_STATUS = 404  # kubectl 1.27+ falls back to /openapi/v2 on 404

_DISCOVERY_GROUP = "apidiscovery.k8s.io"
_DISCOVERY_KIND = "APIGroupDiscoveryList"
# Aggregated discovery: v2 (GA in 1.30) and v2beta1 (what client-go 1.27-1.29 asks
# for) have identical JSON shapes; only the Content-Type and apiVersion differ.
AGGREGATED_CONTENT_TYPES = {
    v: f"{JSON_CONTENT_TYPE};g={_DISCOVERY_GROUP};v={v};as={_DISCOVERY_KIND}"
    for v in ("v2", "v2beta1")
}
AGGREGATED_V2 = AGGREGATED_CONTENT_TYPES["v2"]

_GO_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def _platform() -> str:
    machine = platform.machine().lower()
    return f"{sys.platform}/{_GO_ARCH.get(machine, machine)}"


def version_info(git_commit: str = "", build_date: str = "1970-01-01T00:00:00Z") -> dict[str, str]:
    """The `/version` body (Go's version.Info); see the module docstring for why 1.32.

    kubectl reads `major`/`minor` (the dispatcher picks its binary from them) and
    `gitVersion` (skew warnings); the build fields are only printed, so they describe
    this Python build honestly instead of imitating Go's.
    """
    return {
        "major": MAJOR,
        "minor": MINOR,
        "gitVersion": GIT_VERSION,
        "gitCommit": git_commit,
        "gitTreeState": "clean" if git_commit else "",
        "buildDate": build_date,
        "goVersion": f"{sys.implementation.name}{platform.python_version()}",
        "compiler": sys.implementation.name,
        "platform": _platform(),
    }


def api_versions(server_address: str) -> dict[str, Any]:
    """The legacy `/api` body. `server_address` is "host:port" as clients should dial it."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _group_version(group: str, version: str) -> dict[str, str]:
    return {"groupVersion": f"{group}/{version}", "version": version}


def api_group_list() -> dict[str, Any]:
    """The legacy `/apis` body: every named group, preferred version first."""
    groups = []
    for group, versions in registry.groups():
        if not group:
            continue  # the core group is served at /api
        groups.append(
            {
                "name": group,
                "versions": [_group_version(group, v) for v in versions],
                "preferredVersion": _group_version(group, versions[0]),
            }
        )
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def storage_version_hash(resource: registry.Resource) -> str:
    """Kubernetes' storageVersionHash: base64 of the first 8 bytes of sha256("g/v/Kind").

    Clients use it only to notice that a resource's storage version changed (the
    storage-version migrator); we copy the algorithm so the value matches a real cluster's.
    """
    digest = hashlib.sha256(f"{resource.group}/{resource.version}/{resource.kind}".encode())
    return base64.b64encode(digest.digest()[:8]).decode()


def _legacy_resource(r: registry.Resource) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": r.plural,
        "singularName": r.singular,
        "namespaced": r.namespaced,
        "kind": r.kind,
        "verbs": list(r.verbs),
    }
    if r.short_names:
        entry["shortNames"] = list(r.short_names)
    if r.categories:
        entry["categories"] = list(r.categories)
    entry["storageVersionHash"] = storage_version_hash(r)
    return entry


def _legacy_subresource(r: registry.Resource, sub: registry.Subresource) -> dict[str, Any]:
    # Kubernetes leaves singularName empty for subresources and names group/version only
    # when they differ from the list's: drain finds pods/eviction's policy/v1 this way.
    entry: dict[str, Any] = {
        "name": f"{r.plural}/{sub.name}",
        "singularName": "",
        "namespaced": r.namespaced,
    }
    if (sub.group, sub.version) != (r.group, r.version):
        entry["group"] = sub.group
        entry["version"] = sub.version
    entry["kind"] = sub.kind
    entry["verbs"] = list(sub.verbs)
    return entry


def api_resource_list(group: str, version: str) -> dict[str, Any] | None:
    """The `/api/v1` or `/apis/G/V` body, or None (answer 404) for a version not served.

    Subresources are entries of their own ("pods/log"); the list is sorted by name as
    Kubernetes sorts it.
    """
    resources = registry.resources_in(group, version)
    if not resources:
        return None
    entries = []
    for r in resources:
        entries.append(_legacy_resource(r))
        entries.extend(_legacy_subresource(r, sub) for sub in registry.subresources_of(r))
    entries.sort(key=lambda e: e["name"])
    group_version = f"{group}/{version}" if group else version
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": entries,
    }


# --- aggregated discovery (apidiscovery.k8s.io) -----------------------------------------


def _media_ranges(accept: str) -> list[tuple[str, dict[str, str]]]:
    ranges = []
    for part in accept.split(","):
        base, *params = part.split(";")
        parsed = {}
        for param in params:
            key, _, value = param.partition("=")
            parsed[key.strip().lower()] = value.strip().strip('"')
        ranges.append((base.strip().lower(), parsed))
    return ranges


def _quality(params: dict[str, str]) -> float:
    try:
        return float(params.get("q", "1"))
    except ValueError:
        return 1.0


def wants_aggregated(accept: str | None) -> str | None:
    """The Content-Type to answer `/api` or `/apis` with if the client asks for aggregated
    discovery, else None (answer the legacy body as `application/json`).

    kubectl 1.27+ sends `application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,
    ...;v=v2beta1;...,application/json`; the first range we serve wins, as the client
    lists its preference first. kubectl 1.20 and plain `application/json` clients get
    None. Newer client-go may add `profile=nopeer`, which asks for this apiserver's own
    groups only; with no peers that is the same document.
    """
    if not accept:
        return None
    for base, params in _media_ranges(accept):
        if (
            base == JSON_CONTENT_TYPE
            and params.get("g") == _DISCOVERY_GROUP
            and params.get("as") == _DISCOVERY_KIND
            and params.get("v") in AGGREGATED_CONTENT_TYPES
            and params.get("profile", "nopeer") == "nopeer"
            and _quality(params) > 0
        ):
            return AGGREGATED_CONTENT_TYPES[params["v"]]
    return None


def _kind(group: str, version: str, kind: str) -> dict[str, str]:
    return {"group": group, "version": version, "kind": kind}


def _aggregated_resource(r: registry.Resource) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": r.plural,
        "responseKind": _kind(r.group, r.version, r.kind),
        "scope": "Namespaced" if r.namespaced else "Cluster",
        "singularResource": r.singular,
        "verbs": list(r.verbs),
    }
    if r.short_names:
        entry["shortNames"] = list(r.short_names)
    if r.categories:
        entry["categories"] = list(r.categories)
    subs = registry.subresources_of(r)
    if subs:
        # client-go drops a subresource without responseKind, so it is always filled in.
        entry["subresources"] = [
            {
                "subresource": sub.name,
                "responseKind": _kind(sub.group, sub.version, sub.kind),
                "verbs": list(sub.verbs),
            }
            for sub in subs
        ]
    return entry


def _aggregated_group(group: str, versions: list[str]) -> dict[str, Any]:
    version_entries = []
    for version in versions:
        entry: dict[str, Any] = {"version": version}
        resources = [_aggregated_resource(r) for r in registry.resources_in(group, version)]
        if resources:
            entry["resources"] = resources
        entry["freshness"] = "Current"
        version_entries.append(entry)
    return {"metadata": {"name": group} if group else {}, "versions": version_entries}


def api_group_discovery_list(legacy: bool, content_type: str = AGGREGATED_V2) -> dict[str, Any]:
    """The aggregated body: `/api` (legacy=True, the core group) or `/apis` (the others).

    `content_type` is what `wants_aggregated` returned; it sets the body's apiVersion
    (client-go ignores that field, but a v2beta1 answer should not claim to be v2). One
    request replaces the per-group-version ones (REQUIREMENTS §2.3). Versions are listed
    preferred first; client-go takes the first as the preferred version.
    """
    versions = [v for v, ct in AGGREGATED_CONTENT_TYPES.items() if ct == content_type]
    if not versions:
        raise ValueError(f"not an aggregated discovery content type: {content_type!r}")
    items = [
        _aggregated_group(group, group_versions)
        for group, group_versions in registry.groups()
        if (group == "") == legacy
    ]
    return {
        "kind": _DISCOVERY_KIND,
        "apiVersion": f"{_DISCOVERY_GROUP}/{versions[0]}",
        "metadata": {},
        "items": items,
    }


# --- OpenAPI v2 ------------------------------------------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def openapi_v2_protobuf(version: str = GIT_VERSION) -> bytes:
    """A minimal gnostic openapi_v2.Document: swagger "2.0", info, empty paths/definitions.

    kubectl's client-side validation and `apply` fetch this before any write; with no
    definitions, every kind counts as unknown and goes unvalidated, and apply falls back
    to its compiled-in types, i.e. strategic merge patch for built-in kinds (§3, §7).
    That is the behaviour verified on kubectl 1.20, 1.27 and 1.32. Field numbers from
    gnostic's openapiv2.proto: Document 1 swagger, 2 info, 8 paths, 9 definitions;
    Info 1 title, 2 version.
    """
    info = _field(1, b"Kubernetes") + _field(2, version.encode())
    return _field(1, b"2.0") + _field(2, info) + _field(8, b"") + _field(9, b"")

"""Kubeconfig files that real kubectl (1.20 to 1.33) and kubelite's own clients read.

One cluster, one user, one context, made current. What kubectl needs (measured, see
shared/anchors/kubectl/REQUIREMENTS.md section 1.1): an https server whose certificate
has a SAN, the CA as an absolute path or as embedded base64 data, and a token or a
client certificate (kubectl never sends a token over plain http).

Several apiservers: kubectl takes exactly one `server`, so the first URL goes there and
the full list is kept in a cluster extension that kubectl carries along unread:

    clusters:
    - name: kubelite
      cluster:
        server: https://10.0.0.1:6443
        certificate-authority-data: <base64 PEM>
        extensions:
        - name: kubelite
          extension:
            servers: [https://10.0.0.1:6443, https://10.0.0.2:6443, https://10.0.0.3:6443]

kubelite's client reads `KubeConfig.servers`: `server` first, then the extension's
URLs not already listed, and fails over between them. Point `server` at a load balancer and list the apiservers in
the extension to give kubectl one stable address and kubelite's client every one.

Files holding a token or key are written 0600. Relative paths in a kubeconfig are
resolved against the file's directory, as kubectl does.
"""

from __future__ import annotations

import base64
import contextlib
import os
import ssl
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

EXTENSION_NAME = "kubelite"
DEFAULT_CLUSTER = "kubelite"

# Material given either as PEM (bytes, or str starting with -----BEGIN) or as a path.
PemSource = bytes | str | Path


class KubeconfigError(ValueError):
    pass


@dataclass(frozen=True)
class KubeConfig:
    """What a client needs from the current context, with files already read."""

    servers: tuple[str, ...]
    ca_data: bytes | None = None
    token: str | None = None
    client_cert: bytes | None = None
    client_key: bytes | None = None
    namespace: str = "default"
    insecure_skip_tls_verify: bool = False

    @property
    def server(self) -> str:
        return self.servers[0]


def _is_pem(source: PemSource) -> bool:
    if isinstance(source, bytes):
        return True
    return isinstance(source, str) and source.lstrip().startswith("-----BEGIN")


def _material(entry: dict[str, Any], key: str, source: PemSource | None) -> None:
    """Embed PEM as `<key>-data`, or store an absolute path under `<key>`."""
    if source is None:
        return
    if isinstance(source, bytes) or (isinstance(source, str) and _is_pem(source)):
        data = source if isinstance(source, bytes) else source.encode()
        entry[f"{key}-data"] = base64.b64encode(data).decode("ascii")
    else:
        entry[key] = str(Path(source).resolve())


def render_kubeconfig(
    server_urls: Sequence[str],
    ca: PemSource | None,
    user: str,
    token: str | None = None,
    client_cert: PemSource | None = None,
    client_key: PemSource | None = None,
    namespace: str = "default",
    cluster_name: str = DEFAULT_CLUSTER,
) -> dict[str, Any]:
    """The kubeconfig as a dict (write_kubeconfig serializes it)."""
    if not server_urls:
        raise KubeconfigError("at least one server URL is needed")
    if (client_cert is None) != (client_key is None):
        raise KubeconfigError("client_cert and client_key go together")
    if token is not None and not all(u.startswith("https://") for u in server_urls):
        raise KubeconfigError("kubectl sends tokens only over https")
    cluster: dict[str, Any] = {"server": server_urls[0]}
    _material(cluster, "certificate-authority", ca)
    if len(server_urls) > 1:
        cluster["extensions"] = [
            {"name": EXTENSION_NAME, "extension": {"servers": list(server_urls)}}
        ]
    user_entry: dict[str, Any] = {}
    if token is not None:
        user_entry["token"] = token
    _material(user_entry, "client-certificate", client_cert)
    _material(user_entry, "client-key", client_key)
    context = f"{user}@{cluster_name}"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": cluster_name, "cluster": cluster}],
        "users": [{"name": user, "user": user_entry}],
        "contexts": [
            {
                "name": context,
                "context": {"cluster": cluster_name, "user": user, "namespace": namespace},
            }
        ],
        "current-context": context,
    }


def write_kubeconfig(
    path: str | Path,
    server_urls: Sequence[str],
    ca: PemSource | None,
    user: str,
    token: str | None = None,
    client_cert: PemSource | None = None,
    client_key: PemSource | None = None,
    namespace: str = "default",
    cluster_name: str = DEFAULT_CLUSTER,
) -> Path:
    """Write atomically with mode 0600 (it may hold a token or a key); returns the path."""
    config = render_kubeconfig(
        server_urls, ca, user, token, client_cert, client_key, namespace, cluster_name
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            yaml.safe_dump(config, f, default_flow_style=False, sort_keys=False)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def _named(items: Any, name: str, what: str) -> dict[str, Any]:
    for item in items or ():
        if isinstance(item, dict) and item.get("name") == name:
            body = item.get(what)
            return body if isinstance(body, dict) else {}
    raise KubeconfigError(f"{what} {name!r} not found")


def _read_material(entry: dict[str, Any], key: str, base: Path) -> bytes | None:
    if entry.get(f"{key}-data"):
        return base64.b64decode(entry[f"{key}-data"])
    if entry.get(key):
        return (base / entry[key]).read_bytes()  # an absolute path ignores `base`
    return None


def load_kubeconfig(path: str | Path, context: str | None = None) -> KubeConfig:
    """The current (or given) context of a kubeconfig, with referenced files read."""
    path = Path(path)
    doc = yaml.safe_load(path.read_text())
    if not isinstance(doc, dict):
        raise KubeconfigError(f"{path}: not a kubeconfig")
    name = context or doc.get("current-context")
    if not name:
        raise KubeconfigError(f"{path}: no current-context")
    ctx = _named(doc.get("contexts"), name, "context")
    cluster = _named(doc.get("clusters"), ctx.get("cluster", ""), "cluster")
    user = _named(doc.get("users"), ctx.get("user", ""), "user") if ctx.get("user") else {}
    base = path.resolve().parent
    first = [cluster["server"]] if cluster.get("server") else []
    servers = list(dict.fromkeys([*first, *_extension_servers(cluster)]))
    if not servers:
        raise KubeconfigError(f"{path}: cluster {ctx.get('cluster')!r} has no server")
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = (base / user["tokenFile"]).read_text().strip()
    return KubeConfig(
        servers=tuple(servers),
        ca_data=_read_material(cluster, "certificate-authority", base),
        token=token or None,
        client_cert=_read_material(user, "client-certificate", base),
        client_key=_read_material(user, "client-key", base),
        namespace=ctx.get("namespace") or "default",
        insecure_skip_tls_verify=bool(cluster.get("insecure-skip-tls-verify", False)),
    )


def _extension_servers(cluster: dict[str, Any]) -> Iterator[str]:
    for ext in cluster.get("extensions") or ():
        if isinstance(ext, dict) and ext.get("name") == EXTENSION_NAME:
            body = ext.get("extension") or {}
            yield from (s for s in body.get("servers") or () if isinstance(s, str))


def ssl_context(config: KubeConfig) -> ssl.SSLContext:
    """A client TLS context trusting the kubeconfig's CA and presenting its client cert.

    Python's ssl loads a certificate chain only from files, so embedded client
    material goes through a private temporary directory removed right after loading.
    """
    if config.insecure_skip_tls_verify:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif config.ca_data:
        ctx = ssl.create_default_context(cadata=config.ca_data.decode("ascii"))
    else:
        ctx = ssl.create_default_context()
    if config.client_cert and config.client_key:
        with tempfile.TemporaryDirectory(prefix="kubelite-tls-") as tmp:
            cert_path, key_path = Path(tmp) / "tls.crt", Path(tmp) / "tls.key"
            for p, data in ((cert_path, config.client_cert), (key_path, config.client_key)):
                fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
            ctx.load_cert_chain(cert_path, key_path)
    return ctx

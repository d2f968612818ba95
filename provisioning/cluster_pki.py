"""The cluster's PKI, kept in one directory on the operator's machine.

`ClusterPki.ensure` makes (and on later runs keeps) everything the fleet's processes
authenticate with. The layout follows kubeadm's names where it has them:

    ca.crt ca.key                   the cluster CA (10 years); pinned by join tokens
    sa.key sa.pub                   service-account token signing key pair
    peer-secret                     the store's Raft peer secret (32 random bytes, hex)
    apiserver/<cp>.crt|key          one serving cert per control plane
    apiserver-kubelet-client.crt|key  the apiserver's client cert towards agents
    agents/<node>.crt|key           each agent's serving cert (logs, exec, node proxy)
    nodes/<node>.crt|key            each agent's client cert: system:node:<node>
    admin.crt|key scheduler.crt|key controller-manager.crt|key
    kubeconfigs/<user>.conf         written by kubeconfig_for

Client certificates name the user as Kubernetes reads them (CN = user, each O a
group), which is what the apiserver's `--client-ca-file` authenticator takes
(apiserver/auth/tokens.py). Directories are 0700, keys and the peer secret 0600.

What each leaf must look like is decided by the pure `leaves()`; `ensure` compares the
files with it and re-issues only a leaf that is missing, not signed by the CA, not
matching its key, or whose subject or SANs differ (a new load-balancer address, say).
A second run with the same fleet changes nothing.

Rotation (`rotate`) re-issues leaves from their own certificates (same subject, SANs
and usage, a new key) under the SAME CA, keeping the old files as `.bak`. Old and new
certificates are both valid meanwhile, so machines can be updated one at a time: each
process uses its new files when it restarts, and nothing is down in between. The CA
itself is not rotated (that needs a trust-bundle transition on every machine); its
expiry is reported like any other, ten years ahead.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import secrets
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Protocol

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from apiserver.auth import kubeconfig, pki
from apiserver.auth.user import (
    KUBE_CONTROLLER_MANAGER,
    KUBE_SCHEDULER,
    NODE_USER_PREFIX,
    NODES,
    SYSTEM_MASTERS,
)

DEFAULT_SERVICE_CIDR = "10.96.0.0/12"
DEFAULT_CLUSTER_DOMAIN = "cluster.local"
WARN_BEFORE = dt.timedelta(days=90)
PEER_SECRET_FILE = "peer-secret"
KUBECONFIG_DIR = "kubeconfigs"
CA_NAME = "ca"
ADMIN_USER = "kubernetes-admin"           # kubeadm's admin, in system:masters
APISERVER_CN = "kube-apiserver"
APISERVER_KUBELET_CLIENT = "kube-apiserver-kubelet-client"
BACKUP_SUFFIX = ".bak"
_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


class ClusterPkiError(RuntimeError):
    """The PKI directory cannot be used as it is; the message says what to do."""


class Host(Protocol):
    """A machine as the PKI needs it (inventory machines have these fields)."""

    @property
    def name(self) -> str: ...

    @property
    def address(self) -> str: ...


class Node(NamedTuple):
    name: str
    address: str


@dataclass(frozen=True)
class Leaf:
    """One end-entity certificate: serving when it has hosts, else a client cert."""

    name: str                        # its path below the directory, without suffix
    common_name: str
    groups: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()

    @property
    def serving(self) -> bool:
        return bool(self.hosts)


class CertExpiry(NamedTuple):
    name: str
    not_after: dt.datetime
    days_left: int
    serial: int = 0          # tells a renewed certificate from the one it replaced


# --- what the PKI must hold (pure) ------------------------------------------------------


def first_service_ip(service_cidr: str) -> str:
    """The ClusterIP of the `kubernetes` Service: the service range's first address."""
    network = ipaddress.ip_network(service_cidr, strict=False)
    return str(network.network_address + 1)


def service_names(cluster_domain: str = DEFAULT_CLUSTER_DOMAIN) -> list[str]:
    return ["kubernetes", "kubernetes.default", "kubernetes.default.svc",
            f"kubernetes.default.svc.{cluster_domain}"]


def _check_name(name: str) -> str:
    if not _NAME_RE.match(name) or ".." in name:
        raise ClusterPkiError(f"machine name {name!r} cannot name a certificate file "
                              "(use a DNS label: a-z, 0-9, '-')")
    return name


def leaves(apiserver_hosts: Iterable[Host], load_balancer_hosts: Sequence[str],
           nodes: Iterable[Host], *, service_cidr: str = DEFAULT_SERVICE_CIDR,
           cluster_domain: str = DEFAULT_CLUSTER_DOMAIN) -> list[Leaf]:
    """Every leaf certificate the cluster needs, in a stable order."""
    shared = ["127.0.0.1", "localhost", *load_balancer_hosts, *service_names(cluster_domain),
              first_service_ip(service_cidr)]
    result = [Leaf(f"apiserver/{_check_name(h.name)}", APISERVER_CN,
                   hosts=tuple(dict.fromkeys([h.address, h.name, *shared])))
              for h in _as_hosts(apiserver_hosts)]
    if not result:
        raise ClusterPkiError("a cluster needs at least one control plane (apiserver host)")
    result.append(Leaf("apiserver-kubelet-client", APISERVER_KUBELET_CLIENT, (SYSTEM_MASTERS,)))
    for n in _as_hosts(nodes):
        name = _check_name(n.name)
        result.append(Leaf(f"agents/{name}", name,
                           hosts=tuple(dict.fromkeys([name, n.address]))))
        result.append(Leaf(f"nodes/{name}", f"{NODE_USER_PREFIX}{name}", (NODES,)))
    result += [Leaf("admin", ADMIN_USER, (SYSTEM_MASTERS,)),
               Leaf("scheduler", KUBE_SCHEDULER),
               Leaf("controller-manager", KUBE_CONTROLLER_MANAGER)]
    return result


def _as_hosts(hosts: Iterable[Host | tuple[str, str]]) -> list[Host]:
    return [Node(*h) if isinstance(h, tuple) else h for h in hosts]


def leaf_from_cert(name: str, cert: x509.Certificate) -> Leaf:
    """The leaf a certificate was issued as: what rotation re-issues it with."""
    cn = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    groups = tuple(str(a.value) for a in
                   cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME))
    hosts: list[str] = []
    if _has_usage(cert, ExtendedKeyUsageOID.SERVER_AUTH):
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        for entry in san:
            hosts.append(str(entry.value))
    return Leaf(name, cn[0] if cn else name, groups, tuple(hosts))


def _has_usage(cert: x509.Certificate, usage: x509.ObjectIdentifier) -> bool:
    try:
        return usage in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False


def matches(leaf: Leaf, cert: x509.Certificate) -> bool:
    """The certificate says what the leaf asks for: subject, usage and exact SANs."""
    have = leaf_from_cert(leaf.name, cert)
    if (have.common_name, sorted(have.groups)) != (leaf.common_name, sorted(leaf.groups)):
        return False
    if leaf.serving:
        return set(pki.host_names(list(have.hosts))) == set(pki.host_names(list(leaf.hosts)))
    return _has_usage(cert, ExtendedKeyUsageOID.CLIENT_AUTH)


def warnings(expiries: Iterable[CertExpiry], days: int = WARN_BEFORE.days) -> list[str]:
    """One line per certificate that expires within `days`, saying what to do."""
    lines = []
    for e in expiries:
        if e.days_left >= days:
            continue
        when = e.not_after.strftime("%Y-%m-%d")
        state = (f"expired {-e.days_left} days ago ({when})" if e.days_left < 0
                 else f"expires in {e.days_left} days ({when})")
        if e.name == CA_NAME:
            lines.append(f"the cluster CA {state}: `certs rotate` cannot renew it; plan a "
                         "new CA and re-join every machine")
        else:
            lines.append(f"certificate {e.name} {state}: run `kubelite certs rotate`, "
                         "then restart its process")
    return lines


# --- the directory ----------------------------------------------------------------------


@dataclass
class ClusterPki:
    """The PKI directory; `issued` names the leaves the last `ensure` (re)wrote."""

    directory: Path
    issued: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        self.directory = Path(self.directory).resolve()

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def sa_key(self) -> Path:
        return self.directory / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.directory / "sa.pub"

    @property
    def peer_secret(self) -> Path:
        return self.directory / PEER_SECRET_FILE

    def cert(self, leaf: str) -> Path:
        return self.directory / f"{leaf}.crt"

    def key(self, leaf: str) -> Path:
        return self.directory / f"{leaf}.key"

    def ca_hash(self) -> str:
        return pki.ca_hash(self.ca_cert)

    @classmethod
    def ensure(cls, directory: str | Path, *, apiserver_hosts: Iterable[Host | tuple[str, str]],
               load_balancer_hosts: Sequence[str] = (),
               nodes: Iterable[Host | tuple[str, str]] = (),
               service_cidr: str = DEFAULT_SERVICE_CIDR,
               cluster_domain: str = DEFAULT_CLUSTER_DOMAIN,
               now: dt.datetime | None = None) -> ClusterPki:
        """Create what is missing or wrong, keep the rest; safe to run again."""
        wanted = leaves(_as_hosts(apiserver_hosts), list(load_balancer_hosts),
                        _as_hosts(nodes), service_cidr=service_cidr,
                        cluster_domain=cluster_domain)
        store = cls(Path(directory))
        _private_dir(store.directory)
        ca_cert, ca_key = store._ensure_ca(now)
        issued = []
        for leaf in wanted:
            if store._current(leaf, ca_cert, now):
                continue
            if ca_key is None:
                raise ClusterPkiError(f"{leaf.name} must be issued but the CA key "
                                      f"{store.ca_key} is absent")
            store._write_leaf(leaf, *_issue(leaf, ca_cert, ca_key, now))
            issued.append(leaf.name)
        if not store.sa_key.exists():
            pki.write_pem(store.sa_key, pki.key_pem(pki.new_private_key()), private=True)
        sa_pub = pki.public_key_pem(pki.load_private_key(store.sa_key).public_key())
        if not store.sa_pub.exists() or store.sa_pub.read_bytes() != sa_pub:
            pki.write_pem(store.sa_pub, sa_pub)
        if not store.peer_secret.exists():
            pki.write_pem(store.peer_secret, (secrets.token_hex(32) + "\n").encode(),
                          private=True)
        store._tighten()
        store.issued = tuple(issued)
        return store

    def _ensure_ca(self, now: dt.datetime | None
                   ) -> tuple[x509.Certificate, pki.PrivateKey | None]:
        have_cert, have_key = self.ca_cert.exists(), self.ca_key.exists()
        if have_key and not have_cert:
            raise ClusterPkiError(f"{self.ca_key} exists without {self.ca_cert}: restore "
                                  "the certificate from a backup")
        if not have_cert:
            cert, key = pki.create_ca(now=now)
            pki.write_pem(self.ca_key, pki.key_pem(key), private=True)
            pki.write_pem(self.ca_cert, pki.cert_pem(cert))
            return cert, key
        cert = pki.load_cert(self.ca_cert)
        return cert, pki.load_private_key(self.ca_key) if have_key else None

    def _current(self, leaf: Leaf, ca_cert: x509.Certificate, now: dt.datetime | None) -> bool:
        cert_path, key_path = self.cert(leaf.name), self.key(leaf.name)
        if not (cert_path.exists() and key_path.exists()):
            return False
        cert, key = pki.load_cert(cert_path), pki.load_private_key(key_path)
        return (pki.signed_by(cert, ca_cert)
                and pki.public_key_pem(cert.public_key()) == pki.public_key_pem(key.public_key())
                and matches(leaf, cert)
                and pki.expires_in(cert, now) > dt.timedelta(0))

    def _write_leaf(self, leaf: Leaf, cert: x509.Certificate, key: pki.PrivateKey) -> None:
        cert_path, key_path = self.cert(leaf.name), self.key(leaf.name)
        _private_dir(cert_path.parent)
        for path in (cert_path, key_path):
            if path.exists():
                shutil.copy2(path, path.with_name(path.name + BACKUP_SUFFIX))
        pki.write_pem(key_path, pki.key_pem(key), private=True)
        pki.write_pem(cert_path, pki.cert_pem(cert))

    def _tighten(self) -> None:
        """Keys made by an older run or copied in by hand get 0600, directories 0700."""
        for path in self.directory.rglob("*"):
            if path.is_dir():
                os.chmod(path, 0o700)
            elif path.suffix == ".key" or path.name.endswith(".key" + BACKUP_SUFFIX) \
                    or path.name == PEER_SECRET_FILE:
                os.chmod(path, 0o600)

    def leaf_names(self) -> list[str]:
        """Every leaf certificate in the directory (not the CA, not backups), sorted."""
        return sorted(str(p.relative_to(self.directory).with_suffix(""))
                      for p in self.directory.rglob("*.crt") if p != self.ca_cert)


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def _issue(leaf: Leaf, ca_cert: x509.Certificate, ca_key: pki.PrivateKey,
           now: dt.datetime | None) -> tuple[x509.Certificate, pki.PrivateKey]:
    if leaf.serving:
        return pki.issue_serving_cert(ca_cert, ca_key, list(leaf.hosts),
                                      common_name=leaf.common_name, now=now)
    return pki.issue_client_cert(ca_cert, ca_key, leaf.common_name, leaf.groups, now=now)


# --- expiry and rotation ----------------------------------------------------------------


def expiries(directory: str | Path, now: dt.datetime | None = None) -> list[CertExpiry]:
    """(name, notAfter, whole days left, serial) for the CA and then every leaf."""
    store = ClusterPki(Path(directory))
    if not store.ca_cert.exists():
        raise ClusterPkiError(f"no cluster PKI in {store.directory} (no ca.crt)")
    now = now or dt.datetime.now(dt.UTC)
    result = []
    for name, path in [(CA_NAME, store.ca_cert),
                       *((n, store.cert(n)) for n in store.leaf_names())]:
        cert = pki.load_cert(path)
        result.append(CertExpiry(name, cert.not_valid_after_utc,
                                 pki.expires_in(cert, now).days, cert.serial_number))
    return result


def rotate(directory: str | Path, *, now: dt.datetime | None = None,
           within: dt.timedelta = WARN_BEFORE, force: bool = False) -> list[str]:
    """Re-issue every leaf expiring within `within` (all of them with `force`) under the
    same CA, with a new key; the old files stay as `.bak`. Returns the renewed names.

    No downtime: the CA is unchanged, so old and new certificates are equally valid and
    each process picks up its new files when it is restarted, one machine at a time.
    """
    store = ClusterPki(Path(directory))
    if not (store.ca_cert.exists() and store.ca_key.exists()):
        raise ClusterPkiError(f"rotation needs the CA in {store.directory} (ca.crt and ca.key)")
    ca_cert, ca_key = pki.load_cert(store.ca_cert), pki.load_private_key(store.ca_key)
    renewed = []
    for name in store.leaf_names():
        cert = pki.load_cert(store.cert(name))
        if not force and pki.expires_in(cert, now) >= within:
            continue
        if not pki.signed_by(cert, ca_cert):
            raise ClusterPkiError(f"{store.cert(name)} is not signed by the cluster CA; "
                                  "remove it and run ensure again")
        leaf = leaf_from_cert(name, cert)
        store._write_leaf(leaf, *_issue(leaf, ca_cert, ca_key, now))
        renewed.append(name)
    store._tighten()
    return renewed


# --- kubeconfigs ------------------------------------------------------------------------


def client_leaf(user: str) -> str:
    """The leaf holding `user`'s client cert: by leaf name (admin, scheduler,
    controller-manager, nodes/<n>) or by the user it authenticates as."""
    by_user = {ADMIN_USER: "admin", KUBE_SCHEDULER: "scheduler",
               KUBE_CONTROLLER_MANAGER: "controller-manager",
               APISERVER_KUBELET_CLIENT: "apiserver-kubelet-client"}
    if user in by_user:
        return by_user[user]
    if user.startswith(NODE_USER_PREFIX):
        return f"nodes/{_check_name(user[len(NODE_USER_PREFIX):])}"
    if user.startswith("nodes/"):
        return f"nodes/{_check_name(user[len('nodes/'):])}"
    if user in by_user.values():
        return user
    raise ClusterPkiError(f"no client certificate for user {user!r} (admin, scheduler, "
                          "controller-manager, system:node:<name>)")


def kubeconfig_for(directory: str | Path, user: str, server_urls: Sequence[str], *,
                   path: str | Path | None = None, embed: bool = True) -> Path:
    """Write a kubeconfig for `user` with its client cert; returns its path.

    `embed` puts the CA, cert and key into the file (for copying to a machine);
    otherwise it references the files here by absolute path (for the operator).
    """
    store = ClusterPki(Path(directory))
    leaf = client_leaf(user)
    cert_path, key_path = store.cert(leaf), store.key(leaf)
    if not cert_path.exists():
        raise ClusterPkiError(f"{cert_path} is missing: run ensure first")
    cn = leaf_from_cert(leaf, pki.load_cert(cert_path)).common_name
    if path is None:
        _private_dir(store.directory / KUBECONFIG_DIR)
        path = store.directory / KUBECONFIG_DIR / f"{leaf.replace('/', '-')}.conf"
    if embed:
        return kubeconfig.write_kubeconfig(path, server_urls, store.ca_cert.read_bytes(), cn,
                                           client_cert=cert_path.read_bytes(),
                                           client_key=key_path.read_bytes())
    return kubeconfig.write_kubeconfig(path, server_urls, store.ca_cert, cn,
                                       client_cert=cert_path, client_key=key_path)

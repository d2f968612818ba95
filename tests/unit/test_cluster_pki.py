"""The cluster PKI directory: every leaf's subject and SANs, chains verified with
cryptography's RFC 5280 verifier and a real TLS handshake, file modes, idempotence,
rotation under the same CA, expiry warnings and kubeconfigs."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from apiserver.auth import kubeconfig, pki
from apiserver.auth.tokens import user_from_cert_subject
from provisioning import cluster_pki
from provisioning.cluster_pki import ClusterPki, Node

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
CPS = [Node("cp1", "10.0.0.11"), Node("cp2", "10.0.0.12"), Node("cp3", "10.0.0.13")]
WORKERS = [Node("w1", "10.0.0.21")]
LB = ["10.0.0.100", "api.example.test"]


def _ensure(directory: Path, lb: list[str] = LB, now: dt.datetime = NOW, **kw) -> ClusterPki:
    return ClusterPki.ensure(directory, apiserver_hosts=CPS, load_balancer_hosts=lb,
                             nodes=[*CPS, *WORKERS], now=now, **kw)


@pytest.fixture
def store(tmp_path: Path) -> ClusterPki:
    return _ensure(tmp_path / "pki")


def _cert(store: ClusterPki, leaf: str) -> x509.Certificate:
    return pki.load_cert(store.cert(leaf))


def _sans(cert: x509.Certificate) -> tuple[set[str], set[str]]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return ({str(ip) for ip in san.get_values_for_type(x509.IPAddress)},
            set(san.get_values_for_type(x509.DNSName)))


def _user(cert: x509.Certificate) -> tuple[str, tuple[str, ...]]:
    user = user_from_cert_subject(cert.subject)   # how the apiserver reads a client cert
    assert user is not None
    return user.name, tuple(g for g in user.groups if g != "system:authenticated")


def test_apiserver_serving_certs_name_every_way_to_reach_them(store: ClusterPki) -> None:
    assert store.issued[:3] == ("apiserver/cp1", "apiserver/cp2", "apiserver/cp3")
    for cp in CPS:
        ips, dns = _sans(_cert(store, f"apiserver/{cp.name}"))
        assert ips == {cp.address, "127.0.0.1", "10.0.0.100", "10.96.0.1"}
        assert dns == {cp.name, "localhost", "api.example.test", "kubernetes",
                       "kubernetes.default", "kubernetes.default.svc",
                       "kubernetes.default.svc.cluster.local"}


def test_service_cidr_and_domain_shape_the_sans(tmp_path: Path) -> None:
    store = _ensure(tmp_path / "pki", service_cidr="172.20.0.0/16", cluster_domain="corp.local")
    ips, dns = _sans(_cert(store, "apiserver/cp1"))
    assert "172.20.0.1" in ips and "10.96.0.1" not in ips
    assert "kubernetes.default.svc.corp.local" in dns
    assert cluster_pki.first_service_ip("10.96.0.0/12") == "10.96.0.1"


def test_agent_serving_certs_and_client_identities(store: ClusterPki) -> None:
    for node in [*CPS, *WORKERS]:
        assert _sans(_cert(store, f"agents/{node.name}")) == ({node.address}, {node.name})
        assert _user(_cert(store, f"nodes/{node.name}")) == (
            f"system:node:{node.name}", ("system:nodes",))
    assert _user(_cert(store, "admin")) == ("kubernetes-admin", ("system:masters",))
    assert _user(_cert(store, "scheduler")) == ("system:kube-scheduler", ())
    assert _user(_cert(store, "controller-manager")) == ("system:kube-controller-manager", ())
    assert _user(_cert(store, "apiserver-kubelet-client")) == (
        "kube-apiserver-kubelet-client", ("system:masters",))


def test_every_chain_verifies_for_its_purpose(store: ClusterPki) -> None:
    ca = pki.load_cert(store.ca_cert)
    builder = PolicyBuilder().store(Store([ca])).time(NOW)
    for cp in CPS:
        for name in (cp.address, cp.name, "10.0.0.100", "api.example.test",
                     "kubernetes.default.svc"):
            host = (x509.IPAddress(ipaddress.ip_address(name)) if name[0].isdigit()
                    else x509.DNSName(name))
            verifier = builder.build_server_verifier(host)
            assert verifier.verify(_cert(store, f"apiserver/{cp.name}"), [])[-1] == ca
    for node in WORKERS:
        verifier = builder.build_server_verifier(x509.DNSName(node.name))
        verifier.verify(_cert(store, f"agents/{node.name}"), [])
    # Kubernetes client certs carry no SAN; the web-PKI default policy requires one.
    ee = ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
    client = builder.extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(),
                                        ee_policy=ee).build_client_verifier()
    for leaf in ("admin", "scheduler", "controller-manager", "apiserver-kubelet-client",
                 "nodes/w1"):
        assert client.verify(_cert(store, leaf), []).chain[-1] == ca
    # A serving cert is no client cert and the other way round.
    with pytest.raises(VerificationError):
        client.verify(_cert(store, "apiserver/cp1"), [])
    with pytest.raises(VerificationError):
        builder.build_server_verifier(x509.DNSName("cp1")).verify(_cert(store, "nodes/cp1"), [])


def test_files_are_private(store: ClusterPki) -> None:
    d = store.directory
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    for sub in ("apiserver", "agents", "nodes"):
        assert stat.S_IMODE((d / sub).stat().st_mode) == 0o700
    keys = list(d.rglob("*.key"))
    assert len(keys) == 1 + 1 + 3 + 1 + 4 + 4 + 3   # ca, sa, apiservers, kubelet-client,
    for key in [*keys, store.peer_secret]:            # agents, nodes, admin/sched/cm
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    secret = store.peer_secret.read_text().strip()
    assert len(secret) == 64 and int(secret, 16) >= 0


def test_ensure_is_idempotent_and_tightens_modes(store: ClusterPki) -> None:
    before = {p: p.read_bytes() for p in store.directory.rglob("*") if p.is_file()}
    store.key("admin").chmod(0o644)
    again = _ensure(store.directory)
    assert again.issued == ()
    after = {p: p.read_bytes() for p in store.directory.rglob("*") if p.is_file()}
    assert after == before
    assert stat.S_IMODE(store.key("admin").stat().st_mode) == 0o600


def test_ensure_reissues_only_what_changed(store: ClusterPki) -> None:
    ca_before = store.ca_cert.read_bytes()
    w1_before = store.cert("agents/w1").read_bytes()
    again = _ensure(store.directory, lb=["10.0.0.200"])
    assert again.issued == ("apiserver/cp1", "apiserver/cp2", "apiserver/cp3")
    assert "10.0.0.200" in _sans(_cert(store, "apiserver/cp2"))[0]
    assert "10.0.0.100" not in _sans(_cert(store, "apiserver/cp2"))[0]
    assert store.ca_cert.read_bytes() == ca_before
    assert store.cert("agents/w1").read_bytes() == w1_before
    assert Path(str(store.cert("apiserver/cp1")) + ".bak").exists()
    # A damaged leaf (key of another cert) is replaced.
    store.key("scheduler").write_bytes(store.key("admin").read_bytes())
    assert _ensure(store.directory, lb=["10.0.0.200"]).issued == ("scheduler",)


def test_a_leaf_needs_the_ca_key(store: ClusterPki) -> None:
    store.ca_key.unlink()
    assert _ensure(store.directory).issued == ()            # nothing to sign: fine
    store.cert("admin").unlink()
    with pytest.raises(cluster_pki.ClusterPkiError, match="CA key"):
        _ensure(store.directory)


def test_bad_machine_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(cluster_pki.ClusterPkiError, match="cannot name a certificate file"):
        ClusterPki.ensure(tmp_path, apiserver_hosts=[Node("../etc", "10.0.0.1")])
    with pytest.raises(cluster_pki.ClusterPkiError, match="at least one control plane"):
        ClusterPki.ensure(tmp_path, apiserver_hosts=[])


def test_expiries_and_warnings(store: ClusterPki) -> None:
    rows = cluster_pki.expiries(store.directory, NOW)
    assert rows[0].name == "ca" and rows[0].days_left == 3649
    names = [r.name for r in rows[1:]]
    assert names == sorted(names) and "apiserver/cp1" in names and "nodes/w1" in names
    assert all(r.days_left == 364 for r in rows[1:])
    assert cluster_pki.warnings(rows) == []
    later = cluster_pki.expiries(store.directory, NOW + dt.timedelta(days=300))
    lines = cluster_pki.warnings(later)
    assert len(lines) == len(rows) - 1
    assert "certificate admin expires in 64 days" in "\n".join(lines)
    assert all("kubelite certs rotate" in line for line in lines)
    expired = cluster_pki.expiries(store.directory, NOW + dt.timedelta(days=3700))
    text = "\n".join(cluster_pki.warnings(expired))
    assert "the cluster CA expired" in text and "cannot renew it" in text
    assert "certificate admin expired 3336 days ago" in text


def test_rotate_renews_leaves_under_the_same_ca(store: ClusterPki) -> None:
    ca_bytes = store.ca_cert.read_bytes()
    old = {n: store.cert(n).read_bytes() for n in store.leaf_names()}
    old_keys = {n: store.key(n).read_bytes() for n in store.leaf_names()}
    assert cluster_pki.rotate(store.directory, now=NOW + dt.timedelta(days=100)) == []
    later = NOW + dt.timedelta(days=300)
    renewed = cluster_pki.rotate(store.directory, now=later)
    assert renewed == store.leaf_names()
    assert store.ca_cert.read_bytes() == ca_bytes
    ca = pki.load_cert(store.ca_cert)
    for name in renewed:
        new = _cert(store, name)
        assert pki.signed_by(new, ca)
        assert pki.expires_in(new, later) > dt.timedelta(days=360)
        assert store.key(name).read_bytes() != old_keys[name]            # a new key
        assert Path(str(store.cert(name)) + ".bak").read_bytes() == old[name]
        assert stat.S_IMODE(Path(str(store.key(name)) + ".bak").stat().st_mode) == 0o600
        before = cluster_pki.leaf_from_cert(name, pki.load_cert(old[name]))
        assert cluster_pki.leaf_from_cert(name, new) == before           # same identity
    assert cluster_pki.warnings(cluster_pki.expiries(store.directory, later)) == []
    # Rotated leaves are what ensure wants: nothing more to do.
    assert _ensure(store.directory, now=later).issued == ()


def test_rotate_force_renews_everything_now(store: ClusterPki) -> None:
    admin = store.cert("admin").read_bytes()
    assert cluster_pki.rotate(store.directory, now=NOW, force=True) == store.leaf_names()
    assert store.cert("admin").read_bytes() != admin


def test_kubeconfig_for_embeds_or_references(store: ClusterPki, tmp_path: Path) -> None:
    urls = ["https://10.0.0.100:7443", "https://10.0.0.11:6443"]
    path = cluster_pki.kubeconfig_for(store.directory, "admin", urls)
    assert path == store.directory / "kubeconfigs" / "admin.conf"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    config = kubeconfig.load_kubeconfig(path)
    assert config.servers == tuple(urls)
    assert config.ca_data == store.ca_cert.read_bytes()
    assert config.client_cert == store.cert("admin").read_bytes()
    assert "certificate-authority-data" in path.read_text()
    node = cluster_pki.kubeconfig_for(store.directory, "system:node:w1", urls[:1],
                                      path=tmp_path / "w1.conf", embed=False)
    text = node.read_text()
    assert str(store.cert("nodes/w1")) in text and "client-certificate-data" not in text
    assert kubeconfig.load_kubeconfig(node).client_key == store.key("nodes/w1").read_bytes()
    assert cluster_pki.client_leaf("nodes/w1") == "nodes/w1"
    assert cluster_pki.client_leaf("system:kube-scheduler") == "scheduler"
    with pytest.raises(cluster_pki.ClusterPkiError, match="no client certificate"):
        cluster_pki.kubeconfig_for(store.directory, "alice", urls)


def _handshake(server: ssl.SSLContext, client: ssl.SSLContext, hostname: str) -> dict:
    """A TLS handshake through memory buffers; returns the server's view of the peer."""
    s_in, s_out, c_in, c_out = (ssl.MemoryBIO() for _ in range(4))
    s = server.wrap_bio(s_in, s_out, server_side=True)
    c = client.wrap_bio(c_in, c_out, server_hostname=hostname)
    done = {"s": False, "c": False}
    for _ in range(20):
        for name, end in (("c", c), ("s", s)):
            if not done[name]:
                try:
                    end.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            return s.getpeercert() or {}
    raise AssertionError("handshake did not finish")


def test_openssl_accepts_the_apiserver_and_the_admin_kubeconfig(tmp_path: Path) -> None:
    # Valid now: OpenSSL checks certificates against the real clock.
    store = ClusterPki.ensure(tmp_path / "pki", apiserver_hosts=CPS[:1],
                              load_balancer_hosts=["10.0.0.100"])
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(store.cert("apiserver/cp1"), store.key("apiserver/cp1"))
    server.load_verify_locations(store.ca_cert)        # the apiserver's --client-ca-file
    server.verify_mode = ssl.CERT_REQUIRED
    path = cluster_pki.kubeconfig_for(store.directory, "admin", ["https://10.0.0.100:7443"])
    client = kubeconfig.ssl_context(kubeconfig.load_kubeconfig(path))
    for host in ("10.0.0.100", "cp1", "kubernetes.default.svc"):
        peer = _handshake(server, client, host)
        user = user_from_cert_subject(peer["subject"])
        assert user is not None and user.name == "kubernetes-admin"
        assert "system:masters" in user.groups

"""Kubeconfig files: the shape kubectl reads, round trips, several servers."""

from __future__ import annotations

import base64
import ssl
import stat
from pathlib import Path

import pytest
import yaml

from apiserver.auth import kubeconfig, pki
from apiserver.auth.kubeconfig import KubeConfig

SERVERS = ["https://10.0.0.1:6443", "https://10.0.0.2:6443", "https://10.0.0.3:6443"]


@pytest.fixture(scope="module")
def material() -> dict[str, bytes]:
    ca_cert, ca_key = pki.create_ca()
    cert, key = pki.issue_client_cert(ca_cert, ca_key, "admin", ["system:masters"])
    return {"ca": pki.cert_pem(ca_cert), "cert": pki.cert_pem(cert), "key": pki.key_pem(key)}


def test_embedded_token_config_shape_and_round_trip(tmp_path: Path, material) -> None:
    path = kubeconfig.write_kubeconfig(
        tmp_path / "admin.conf", SERVERS, material["ca"], "admin", token="s3cret", namespace="ops"
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = yaml.safe_load(path.read_text())
    assert doc["apiVersion"] == "v1" and doc["kind"] == "Config"
    assert doc["current-context"] == "admin@kubelite"
    cluster = doc["clusters"][0]["cluster"]
    assert cluster["server"] == SERVERS[0]
    assert base64.b64decode(cluster["certificate-authority-data"]) == material["ca"]
    assert cluster["extensions"] == [{"name": "kubelite", "extension": {"servers": SERVERS}}]
    assert doc["users"] == [{"name": "admin", "user": {"token": "s3cret"}}]
    assert doc["contexts"][0]["context"] == {
        "cluster": "kubelite",
        "user": "admin",
        "namespace": "ops",
    }
    assert kubeconfig.load_kubeconfig(path) == KubeConfig(
        servers=tuple(SERVERS), ca_data=material["ca"], token="s3cret", namespace="ops"
    )


def test_file_references_are_absolute_and_read_back(tmp_path: Path, material, monkeypatch) -> None:
    for name in ("ca", "cert", "key"):
        (tmp_path / f"{name}.pem").write_bytes(material[name])
    monkeypatch.chdir(tmp_path)
    path = kubeconfig.write_kubeconfig(
        tmp_path / "sub" / "node.conf",
        SERVERS[:1],
        Path("ca.pem"),
        "system:node:w1",
        client_cert=Path("cert.pem"),
        client_key="key.pem",
    )
    doc = yaml.safe_load(path.read_text())
    assert doc["clusters"][0]["cluster"] == {
        "server": SERVERS[0],
        "certificate-authority": str(tmp_path / "ca.pem"),
    }
    assert doc["users"][0]["user"] == {
        "client-certificate": str(tmp_path / "cert.pem"),
        "client-key": str(tmp_path / "key.pem"),
    }
    cfg = kubeconfig.load_kubeconfig(path)
    assert cfg.servers == (SERVERS[0],) and cfg.server == SERVERS[0]
    assert (cfg.ca_data, cfg.client_cert, cfg.client_key) == (
        material["ca"],
        material["cert"],
        material["key"],
    )
    assert cfg.token is None and cfg.namespace == "default"


def test_load_resolves_relative_paths_against_the_file(tmp_path: Path, material) -> None:
    (tmp_path / "ca.crt").write_bytes(material["ca"])
    (tmp_path / "token").write_text("tok\n")
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "c",
                "cluster": {
                    "server": "https://lb:6443",
                    "certificate-authority": "ca.crt",
                    "extensions": [
                        {
                            "name": "kubelite",
                            "extension": {"servers": ["https://a:6443", "https://lb:6443"]},
                        }
                    ],
                },
            }
        ],
        "users": [{"name": "u", "user": {"tokenFile": "token"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    (tmp_path / "kc").write_text(yaml.safe_dump(doc))
    cfg = kubeconfig.load_kubeconfig(tmp_path / "kc")
    assert cfg.servers == ("https://lb:6443", "https://a:6443")  # server first, no duplicates
    assert cfg.ca_data == material["ca"] and cfg.token == "tok"
    with pytest.raises(kubeconfig.KubeconfigError, match="not found"):
        kubeconfig.load_kubeconfig(tmp_path / "kc", context="nope")


def test_write_refuses_what_kubectl_would_mishandle(tmp_path: Path, material) -> None:
    with pytest.raises(kubeconfig.KubeconfigError, match="https"):
        kubeconfig.write_kubeconfig(tmp_path / "k", ["http://127.0.0.1:8080"], None, "u", token="t")
    with pytest.raises(kubeconfig.KubeconfigError, match="together"):
        kubeconfig.write_kubeconfig(
            tmp_path / "k", SERVERS, None, "u", client_cert=material["cert"]
        )
    with pytest.raises(kubeconfig.KubeconfigError, match="at least one"):
        kubeconfig.write_kubeconfig(tmp_path / "k", [], None, "u")
    assert not (tmp_path / "k").exists()


def test_ssl_context_loads_embedded_client_cert(tmp_path: Path, material) -> None:
    path = kubeconfig.write_kubeconfig(
        tmp_path / "k",
        SERVERS,
        material["ca"],
        "admin",
        client_cert=material["cert"],
        client_key=material["key"].decode(),
    )
    ctx = kubeconfig.ssl_context(kubeconfig.load_kubeconfig(path))
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert len(ctx.get_ca_certs()) == 1

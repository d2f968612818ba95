"""`kubelite kubeconfig`: what it writes is what load_kubeconfig (and kubectl) read."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import kubelite_cli
from apiserver.auth import kubeconfig


def test_token_and_several_servers(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_bytes(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    out = tmp_path / "cfg" / "admin.kubeconfig"
    assert kubelite_cli.main(["kubeconfig", "--server", "https://lb:7443",
                              "--server", "https://a:6443,https://b:6443",
                              "--certificate-authority", str(ca), "--token-file", str(token),
                              "--user", "ops", "--namespace", "prod",
                              "--output", str(out)]) == 0
    assert out.stat().st_mode & 0o777 == 0o600
    loaded = kubeconfig.load_kubeconfig(out)
    assert loaded.servers == ("https://lb:7443", "https://a:6443", "https://b:6443")
    assert loaded.token == "s3cret" and loaded.namespace == "prod"
    assert loaded.ca_data == ca.read_bytes()
    doc = yaml.safe_load(out.read_text())
    assert doc["clusters"][0]["cluster"]["certificate-authority"] == str(ca.resolve())
    assert doc["current-context"] == "ops@kubelite"


def test_client_certificate_embedded_to_stdout(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    cert, key = tmp_path / "u.crt", tmp_path / "u.key"
    cert.write_bytes(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    key.write_bytes(b"-----BEGIN PRIVATE KEY-----\nBBBB\n-----END PRIVATE KEY-----\n")
    assert kubelite_cli.main(["kubeconfig", "--server", "https://a:6443",
                              "--client-certificate", str(cert), "--client-key", str(key),
                              "--embed-certs"]) == 0
    written = tmp_path / "from-stdout"
    written.write_text(capsys.readouterr().out)
    loaded = kubeconfig.load_kubeconfig(written)
    assert loaded.client_cert == cert.read_bytes() and loaded.client_key == key.read_bytes()
    assert loaded.token is None and loaded.servers == ("https://a:6443",)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--server", "http://a:8080", "--token", "t"], "only over https"),
        (["--server", "https://a:1", "--client-certificate", "x.crt"], "go together"),
        (["--server", "https://a:1", "--token-file", "/nonexistent/token"], "No such file"),
    ],
)
def test_errors_are_reported(args: list[str], message: str,
                             capsys: pytest.CaptureFixture[str]) -> None:
    assert kubelite_cli.main(["kubeconfig", *args]) == 2
    assert message in capsys.readouterr().err


def test_token_and_token_file_exclude_each_other() -> None:
    with pytest.raises(SystemExit):
        kubelite_cli.main(["kubeconfig", "--server", "https://a:1", "--token", "t",
                           "--token-file", "f"])

"""`kubelite apiserver haproxy-config`: the generated configuration and its CLI.

Debian's haproxy validates and runs this configuration in
tests/integration/test_api_client_ha.py; here we check what it says.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from apiserver import haproxy
from apiserver import main as apiserver_main


def lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines()]


def test_tcp_passthrough_with_tls_readyz_checks(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    text = haproxy.render(["https://10.0.0.1:6443", "10.0.0.2:6443", "https://[fd00::3]:6443"],
                          "0.0.0.0:7443", ca_file=ca)
    got = lines(text)
    assert "mode tcp" in got  # TLS passes through to the apiservers
    assert "bind 0.0.0.0:7443" in got
    assert "option httpchk GET /readyz" in got
    assert "http-check expect status 200" in got
    assert "timeout tunnel 1h" in got  # long watches
    assert "balance leastconn" in got
    assert "option redispatch 1" in got
    assert any(line.startswith("default-server") and "fall 3" in line
               and "on-marked-down shutdown-sessions" in line for line in got)
    verify = f"verify required ca-file {ca.resolve()}"
    assert f"server apiserver0 10.0.0.1:6443 check check-ssl {verify}" in got
    assert f"server apiserver1 10.0.0.2:6443 check check-ssl {verify}" in got
    assert f"server apiserver2 fd00::3:6443 check check-ssl {verify}" in got
    assert not any(line.startswith("maxconn") for line in got)


def test_options() -> None:
    text = haproxy.render(["https://a:6443", "http://b:8080"], "127.0.0.1:7443",
                          balance="roundrobin", maxconn=500)
    got = lines(text)
    assert "balance roundrobin" in got and "maxconn 500" in got
    assert "server apiserver0 a:6443 check check-ssl verify none" in got
    assert "server apiserver1 b:8080 check" in got  # plain http: plain checks


@pytest.mark.parametrize(
    ("backends", "listen", "message"),
    [
        ([], "0.0.0.0:7443", "at least one"),
        (["https://a:1", "a:1"], "0.0.0.0:7443", "repeat"),
        (["ftp://a:1"], "0.0.0.0:7443", "expected https"),
        (["https://a:1/api"], "0.0.0.0:7443", "path"),
        (["a"], "0.0.0.0:7443", "not HOST:PORT"),
        (["a:1"], "7443", "not HOST:PORT"),
        (["a:99999"], "0.0.0.0:7443", "not HOST:PORT"),
    ],
)
def test_refuses(backends: list[str], listen: str, message: str) -> None:
    with pytest.raises(haproxy.ConfigError, match=message):
        haproxy.render(backends, listen)


def test_cli_through_kubelite_apiserver(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "haproxy.cfg"
    assert apiserver_main.main(["haproxy-config", "--backend", "https://a:6443,https://b:6443",
                                "--backend", "https://c:6443", "--listen", "127.0.0.1:7443",
                                "--output", str(out)]) == 0
    assert "server apiserver2 c:6443" in out.read_text()
    assert apiserver_main.main(["haproxy-config", "--backend", "https://a:1"]) == 0
    assert "bind 0.0.0.0:7443" in capsys.readouterr().out
    assert apiserver_main.main(["haproxy-config", "--backend", "nope"]) == 2
    assert "not HOST:PORT" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # the server's own flags are untouched
        apiserver_main.main(["--listen", "127.0.0.1:1"])  # --store-endpoints is required

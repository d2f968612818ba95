"""Real kubectl (the machine's 1.32 through the dispatcher, and Debian's 1.20) reads the
kubeconfigs kubelite writes and talks TLS to a certificate from kubelite's PKI.

The server is a throwaway HTTPS aiohttp app on 127.0.0.1 that authenticates with
apiserver.auth.tokens and authorizes with apiserver.auth.rbac over the bootstrap
policy, so the 401 and 403 answers kubectl prints come from the real code paths.
`/usr/bin/kubectl` is a dispatcher that first GETs /version and runs kubectl.1.<minor>;
the stub reports minor 32.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from aiohttp import web

from apiserver import request_info
from apiserver.auth import bootstrap_policy, kubeconfig, pki, rbac, tokens
from apiserver.auth.user import UserInfo
from tests import ports

DISPATCHER = "/usr/bin/kubectl"
KUBECTL_120 = os.environ.get("KUBECTL_120", "/opt/kubectl-1.20/usr/bin/kubectl")
KUBECTLS = {"1.32": (DISPATCHER, "v1.32."), "1.20": (KUBECTL_120, "v1.20.")}
ADMIN_TOKEN = "admin-token-0123456789"
BOB_TOKEN = "bob-token-0123456789"
TOKEN_FILE = f'{ADMIN_TOKEN},admin,uid-1,"system:masters"\n{BOB_TOKEN},bob,uid-2\n'


@dataclass
class Seen:
    path: str
    authorization: str | None
    user_agent: str
    user: UserInfo | None


class StubApiserver:
    """HTTPS on a free loopback port, served from its own thread and event loop."""

    def __init__(self, paths: pki.PkiPaths) -> None:
        self.port = ports.free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.seen: list[Seen] = []
        self.users = tokens.parse_token_file(TOKEN_FILE)
        self.cluster_roles = rbac.index_cluster_roles(bootstrap_policy.cluster_roles())
        self.bindings = bootstrap_policy.cluster_role_bindings()
        self.ssl = pki_server_context(paths)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="stub-apiserver")
        self.runner: web.AppRunner | None = None

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port, ssl_context=self.ssl).start()

    def stop(self) -> None:
        if self.runner is not None:
            asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
        ports.release([self.port])

    async def handle(self, request: web.Request) -> web.Response:
        transport = request.transport
        peer = transport.get_extra_info("peercert") if transport is not None else None
        header = request.headers.get("Authorization")
        user = tokens.authenticate(header, self.users, None, (peer or {}).get("subject"))
        ua = request.headers.get("User-Agent", "")
        self.seen.append(Seen(request.path, header, ua, user))
        if user is None:
            return status(401, "Unauthorized", "Unauthorized")
        info = request_info.parse(request.method, request.path, request.query)
        attrs = rbac.attributes_from_request(user, info)
        allowed, reason = rbac.authorize(attrs, {}, self.cluster_roles, [], self.bindings)
        if not allowed:
            message = rbac.forbidden_message(attrs, reason)
            return status(403, "Forbidden", message, rbac.forbidden_details(attrs))
        if request.path == "/version":
            body = {"major": "1", "minor": "32", "gitVersion": "v1.32.0", "platform": "linux/amd64"}
            return web.Response(
                body=orjson.dumps(body), headers={"Content-Type": "application/json"}
            )
        if request.path in ("/healthz", "/livez", "/readyz"):
            return web.Response(text="ok")
        return status(404, "NotFound", "the server could not find the requested resource")


def status(code: int, reason: str, message: str, details: dict | None = None) -> web.Response:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return web.Response(
        body=orjson.dumps(body), status=code, headers={"Content-Type": "application/json"}
    )


def pki_server_context(paths: pki.PkiPaths) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(paths.serving_cert, paths.serving_key)
    # Ask for a client certificate and verify it against the cluster CA when one comes.
    ctx.load_verify_locations(paths.ca_cert)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


@pytest.fixture(scope="module")
def cluster_pki(tmp_path_factory: pytest.TempPathFactory) -> pki.PkiPaths:
    return pki.ensure_pki(tmp_path_factory.mktemp("pki"), ["127.0.0.1"])


@pytest.fixture(scope="module")
def stub(cluster_pki: pki.PkiPaths) -> Iterator[StubApiserver]:
    server = StubApiserver(cluster_pki)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=sorted(KUBECTLS))
def kubectl(request: pytest.FixtureRequest) -> tuple[str, str]:
    binary, version = KUBECTLS[request.param]
    if not os.access(binary, os.X_OK):
        pytest.fail(f"{binary} is missing: run `bash scripts/setup.sh` as root", pytrace=False)
    return binary, version


def run_kubectl(binary: str, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(config.parent)}
    return subprocess.run(
        [binary, "--kubeconfig", str(config), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def dead_url() -> str:
    return f"https://127.0.0.1:{ports.free_port()}"  # reserved, nothing listens


@pytest.mark.parametrize("ca_form", ["path", "data"])
def test_kubectl_sends_bearer_token_and_trusts_the_ca(
    tmp_path: Path, stub: StubApiserver, cluster_pki: pki.PkiPaths, kubectl, ca_form: str
) -> None:
    binary, version = kubectl
    ca = cluster_pki.ca_cert if ca_form == "path" else cluster_pki.ca_cert.read_bytes()
    # Two servers: kubectl uses the first, the second lives in the kubelite extension.
    config = kubeconfig.write_kubeconfig(
        tmp_path / "kc", [stub.url, dead_url()], ca, "admin", token=ADMIN_TOKEN
    )
    before = len(stub.seen)
    result = run_kubectl(binary, config, "get", "--raw", "/healthz")
    assert (result.returncode, result.stdout) == (0, "ok"), result.stderr
    seen = [s for s in stub.seen[before:] if s.path == "/healthz"]
    assert len(seen) == 1
    assert seen[0].authorization == f"Bearer {ADMIN_TOKEN}"
    assert seen[0].user is not None and seen[0].user.name == "admin"
    assert f"/{version}" in seen[0].user_agent  # e.g. kubectl1.32/v1.32.2 (linux/amd64) ...
    assert kubeconfig.load_kubeconfig(config).servers[0] == stub.url


def test_kubectl_client_certificate(
    tmp_path: Path, stub: StubApiserver, cluster_pki: pki.PkiPaths, kubectl
) -> None:
    binary, _ = kubectl
    ca_cert = pki.load_cert(cluster_pki.ca_cert)
    ca_key = pki.load_private_key(cluster_pki.ca_key)
    cert, key = pki.issue_client_cert(ca_cert, ca_key, "root", ["system:masters"])
    config = kubeconfig.write_kubeconfig(
        tmp_path / "kc",
        [stub.url],
        cluster_pki.ca_cert,
        "root",
        client_cert=pki.cert_pem(cert),
        client_key=pki.key_pem(key),
    )
    before = len(stub.seen)
    result = run_kubectl(binary, config, "get", "--raw", "/readyz")
    assert (result.returncode, result.stdout) == (0, "ok"), result.stderr
    seen = [s for s in stub.seen[before:] if s.path == "/readyz"]
    assert seen[0].authorization is None
    assert seen[0].user == UserInfo("root", "", ("system:masters", "system:authenticated"))


def test_kubectl_wrong_token_is_unauthorized(
    tmp_path: Path, stub: StubApiserver, cluster_pki: pki.PkiPaths, kubectl
) -> None:
    binary, _ = kubectl
    config = kubeconfig.write_kubeconfig(
        tmp_path / "kc", [stub.url], cluster_pki.ca_cert, "admin", token="wrong"
    )
    result = run_kubectl(binary, config, "get", "--raw", "/healthz")
    assert result.returncode != 0
    assert "error: You must be logged in to the server (Unauthorized)" in result.stderr


def test_kubectl_prints_the_forbidden_message(
    tmp_path: Path, stub: StubApiserver, cluster_pki: pki.PkiPaths, kubectl
) -> None:
    binary, _ = kubectl
    config = kubeconfig.write_kubeconfig(
        tmp_path / "kc", [stub.url], cluster_pki.ca_cert, "bob", token=BOB_TOKEN
    )
    result = run_kubectl(binary, config, "get", "--raw", "/api/v1/namespaces/default/pods/x")
    assert result.returncode != 0
    assert (
        'Error from server (Forbidden): pods "x" is forbidden: User "bob" cannot get resource '
        '"pods" in API group "" in the namespace "default"'
    ) in result.stderr


def test_kubectl_refuses_a_server_outside_the_ca(
    tmp_path: Path, stub: StubApiserver, kubectl
) -> None:
    binary, _ = kubectl
    other_ca, _ = pki.create_ca()
    config = kubeconfig.write_kubeconfig(
        tmp_path / "kc", [stub.url], pki.cert_pem(other_ca), "admin", token=ADMIN_TOKEN
    )
    before = len(stub.seen)
    result = run_kubectl(binary, config, "get", "--raw", "/healthz")
    assert result.returncode != 0
    assert "x509: certificate signed by unknown authority" in result.stderr
    assert [s for s in stub.seen[before:] if s.path == "/healthz"] == []  # token never sent

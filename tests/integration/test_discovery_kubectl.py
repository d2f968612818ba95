"""Real kubectl discovers our API from apiserver.discovery's bodies alone.

A throwaway aiohttp server on 127.0.0.1 serves only discovery (`/version`, `/api`,
`/apis`, `/api/v1`, `/apis/G/V`, `/openapi/v2`; everything else a NotFound Status),
with the handler rules from apiserver/discovery.py's docstring. Each case runs one
real binary:

- /usr/bin/kubectl is Google's dispatcher: it runs kubectl 1.<server minor> (§12), so
  the server's reported minor picks 1.32 (aggregated discovery v2) or 1.27 (v2beta1);
  a server that ignores the aggregated Accept makes 1.32 fall back to legacy discovery,
  the path where an empty group-version once broke `api-resources`.
- Debian's kubectl 1.20 (unpacked by scripts/setup.sh) only knows legacy discovery.

Both binaries are part of the machine's setup; a missing one fails the test rather than
skipping it, so a machine without them cannot pass by testing nothing.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest
from aiohttp import web

from apiserver import discovery, registry
from tests import ports

T = TypeVar("T")

DISPATCHER = "/usr/bin/kubectl"
KUBECTL_1_20 = "/opt/kubectl-1.20/usr/bin/kubectl"
KUBECTL_TIMEOUT = 60.0

NOT_FOUND = {
    "kind": "Status",
    "apiVersion": "v1",
    "metadata": {},
    "status": "Failure",
    "message": "the server could not find the requested resource",
    "reason": "NotFound",
    "details": {},
    "code": 404,
}

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: []
users: []
contexts: []
"""

POD_MANIFEST = """\
apiVersion: v1
kind: Pod
metadata: {name: probe}
spec: {containers: [{name: main, image: busybox}]}
"""


def run(coro: Coroutine[Any, Any, T]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, 4 * KUBECTL_TIMEOUT)

    return asyncio.run(bounded())


@dataclass
class Seen:
    path: str
    accept: str
    user_agent: str


@dataclass
class DiscoveryServer:
    """Serves discovery only; `aggregated=False` ignores the aggregated Accept."""

    aggregated: bool = True
    minor: str | None = None  # override the reported minor to steer the dispatcher
    requests: list[Seen] = field(default_factory=list)

    def _json(
        self, body: Any, content_type: str = "application/json", status: int = 200
    ) -> web.Response:
        # Exactly "application/json": aiohttp's content_type= would add a charset (§1.2).
        return web.Response(
            status=status, body=orjson.dumps(body), headers={"Content-Type": content_type}
        )

    async def handle(self, request: web.Request) -> web.StreamResponse:
        accept = request.headers.get("Accept", "")
        self.requests.append(Seen(request.path, accept, request.headers.get("User-Agent", "")))
        path = request.path.rstrip("/")
        if path == "/version":
            info = discovery.version_info()
            return self._json({**info, "minor": self.minor} if self.minor else info)
        if path in ("/api", "/apis"):
            content_type = discovery.wants_aggregated(accept) if self.aggregated else None
            if content_type:
                body = discovery.api_group_discovery_list(path == "/api", content_type)
                return self._json(body, content_type)
            if path == "/api":
                return self._json(discovery.api_versions(request.host))
            return self._json(discovery.api_group_list())
        if path == "/openapi/v2":
            return web.Response(
                body=discovery.openapi_v2_protobuf(),
                headers={"Content-Type": discovery.OPENAPI_V2_CONTENT_TYPE},
            )
        parts = path.split("/")[1:]
        body = None
        if parts[:1] == ["api"] and len(parts) == 2:
            body = discovery.api_resource_list("", parts[1])
        elif parts[:1] == ["apis"] and len(parts) == 3:
            body = discovery.api_resource_list(parts[1], parts[2])
        if body is not None:
            return self._json(body)
        return self._json(NOT_FOUND, status=404)  # /openapi/v3 included

    def discovery_paths(self) -> list[str]:
        return [s.path for s in self.requests if s.path.startswith(("/api", "/apis"))]

    def kubectl_agents(self) -> set[str]:
        return {
            s.user_agent.split(" ")[0] for s in self.requests if s.user_agent.startswith("kubectl/")
        }


@asynccontextmanager
async def serving(server: DiscoveryServer) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app)
    [port] = ports.free_ports(1)
    try:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
        ports.release([port])


async def kubectl(binary: str, url: str, home: Path, *args: str) -> tuple[int, str, str]:
    """Run kubectl against `url` with a private HOME, kubeconfig and discovery cache."""
    if not os.access(binary, os.X_OK):
        pytest.fail(f"{binary} is missing; run `bash scripts/setup.sh` as root", pytrace=False)
    home.mkdir(exist_ok=True)
    kubeconfig = home / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    env = {**os.environ, "HOME": str(home), "KUBECONFIG": str(kubeconfig)}
    proc = await asyncio.create_subprocess_exec(
        binary,
        "--server",
        url,
        "--cache-dir",
        str(home / "cache"),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), KUBECTL_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def api_resources_table(out: str) -> dict[str, list[str]]:
    """`kubectl api-resources` rows by name: [shortnames, apiversion, namespaced, kind]."""
    lines = out.splitlines()
    header = lines[0]
    starts = [header.index(col) for col in ("SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND")]
    rows = {}
    for line in lines[1:]:
        bounds = [0, *starts, len(line)]
        cells = [line[a:b].strip() for a, b in zip(bounds, bounds[1:], strict=False)]
        rows[cells[0]] = cells[1:]
    return rows


@dataclass(frozen=True)
class Case:
    binary: str
    aggregated: bool
    minor: str | None
    agent: str  # User-Agent prefix of the kubectl that must have run
    legacy_requests: bool  # whether discovery fetched /api/v1 and /apis/G/V one by one


CASES = {
    "dispatcher-1.32-aggregated-v2": Case(DISPATCHER, True, None, "kubectl/v1.32.", False),
    "dispatcher-1.27-aggregated-v2beta1": Case(DISPATCHER, True, "27", "kubectl/v1.27.", False),
    "dispatcher-1.32-legacy": Case(DISPATCHER, False, None, "kubectl/v1.32.", True),
    "debian-1.20-legacy": Case(KUBECTL_1_20, True, None, "kubectl/v1.20.", True),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_kubectl_api_resources(case: Case, tmp_path: Path) -> None:
    server = DiscoveryServer(aggregated=case.aggregated, minor=case.minor)

    async def scenario() -> tuple[int, str, str]:
        async with serving(server) as url:
            return await kubectl(case.binary, url, tmp_path, "api-resources")

    rc, out, err = run(scenario())
    assert rc == 0, err
    assert "error" not in err.lower(), err
    assert [agent[: len(case.agent)] for agent in server.kubectl_agents()] == [case.agent]

    rows = api_resources_table(out)
    assert rows["pods"] == ["po", "v1", "true", "Pod"]
    assert rows["deployments"] == ["deploy", "apps/v1", "true", "Deployment"]
    assert rows["services"] == ["svc", "v1", "true", "Service"]
    assert rows["nodes"] == ["no", "v1", "false", "Node"]
    assert rows["jobs"] == ["", "batch/v1", "true", "Job"]
    assert rows["poddisruptionbudgets"] == ["pdb", "policy/v1", "true", "PodDisruptionBudget"]
    assert rows["clusterroles"][1:] == ["rbac.authorization.k8s.io/v1", "false", "ClusterRole"]
    assert set(rows) == {r.plural for r in registry.RESOURCES}

    paths = server.discovery_paths()
    assert {"/api", "/apis"} <= set(paths)
    assert ("/api/v1" in paths and "/apis/apps/v1" in paths) == case.legacy_requests


@pytest.mark.parametrize(
    "binary", [DISPATCHER, KUBECTL_1_20], ids=["dispatcher-1.32", "debian-1.20"]
)
def test_client_side_validation_accepts_our_openapi_document(binary: str, tmp_path: Path) -> None:
    # `create -f` validates against /openapi/v2 first (§3); a kind the empty document
    # does not define goes unvalidated, so a client-side dry run succeeds offline.
    server = DiscoveryServer()
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(POD_MANIFEST)

    async def scenario() -> tuple[int, str, str]:
        async with serving(server) as url:
            return await kubectl(
                binary,
                url,
                tmp_path,
                "create",
                "--dry-run=client",
                "-o",
                "name",
                "-f",
                str(manifest),
            )

    rc, out, err = run(scenario())
    assert rc == 0, err
    assert out.strip() == "pod/probe"
    assert "/openapi/v2" in [s.path for s in server.requests]


def test_kubectl_version_reports_our_server_without_complaint(tmp_path: Path) -> None:
    server = DiscoveryServer()

    async def scenario() -> tuple[int, str, str]:
        async with serving(server) as url:
            return await kubectl(DISPATCHER, url, tmp_path, "version", "-o", "json")

    rc, out, err = run(scenario())
    assert rc == 0, err
    assert "WARNING" not in err  # the skew warning 1.32 prints for other minors
    reported = orjson.loads(out)["serverVersion"]
    assert reported == discovery.version_info()

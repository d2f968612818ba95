"""Shared fixtures: store clusters of every kind, started fresh for each test.

`store_cluster` runs a test once per kind in STORE_KINDS. Adding a kind means writing a
class with the `tests.clusters.StoreClusterHandle` shape, adding it to
CLUSTER_FACTORIES and appending its name to STORE_KINDS.

`store_cluster_module` is the same, shared by every test of one module: for suites of
many short tests (the compatibility suite) that keep apart by key prefix, and measure
revisions relative to their own start, instead of paying for a cluster per test.

`apiservers_module` puts two real `kubelite apiserver` processes over that module's
store cluster, so every apiserver test runs once over real etcd and once over kubelite's
store; `admin_api` talks to the first as the cluster admin, and `namespace` gives each
test a namespace of its own to keep apart from the other tests of the module.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from tests.apiserver_cluster import ApiserverCluster
from tests.apiserver_http import Api, namespace_body
from tests.clusters import ETCD_BINARY, EtcdCluster, StoreClusterHandle
from tests.kubelite_cluster import KubeliteCluster
from tests.privileges import nft_required, root_required  # noqa: F401 (fixtures)

STORE_KINDS = ["etcd", "kubelite"]

CLUSTER_FACTORIES: dict[str, Callable[..., StoreClusterHandle]] = {
    "etcd": EtcdCluster,
    "kubelite": KubeliteCluster,
}

CLUSTER_SIZE = 3

H = TypeVar("H", bound=StoreClusterHandle)


def _require_etcd() -> None:
    # Fail, never skip: a machine without etcd would otherwise pass by testing nothing.
    if not (os.path.isfile(ETCD_BINARY) and os.access(ETCD_BINARY, os.X_OK)):
        pytest.fail(
            f"{ETCD_BINARY} is missing: integration tests need real etcd 3.4 from Debian's "
            "etcd-server package; run `bash scripts/setup.sh` as root",
            pytrace=False,
        )


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    # Keep each phase's report on the item so fixtures can tell, in teardown, whether
    # the test failed and print the cluster's logs before removing them.
    report = yield
    setattr(item, f"_report_{report.when}", report)
    return report


def _test_failed(request: pytest.FixtureRequest) -> bool:
    report = getattr(request.node, "_report_call", None)
    return report is None or report.failed


def _managed(
    request: pytest.FixtureRequest, cluster: H, module_failed: Callable[[], bool] | None = None
) -> Iterator[H]:
    """Yield the cluster; on the way out show its logs if a user failed, then close it.

    For a test's own cluster the logs go into that test's captured output. A module's
    cluster passes `module_failed`; its logs go straight to the terminal, since its
    teardown belongs to whichever test ran last, not to the one that failed.
    """
    try:
        yield cluster
    finally:
        failed = module_failed() if module_failed is not None else _test_failed(request)
        log_tails = getattr(cluster, "log_tails", None)
        if failed and log_tails is not None:
            text = f"\n{cluster.kind} cluster logs:\n{log_tails()}"
            capture = request.config.pluginmanager.getplugin("capturemanager")
            if module_failed is not None and capture is not None:
                with capture.global_and_fixture_disabled():
                    print(text)
            else:
                print(text)
        cluster.close()


@pytest.fixture
def etcd_cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EtcdCluster]:
    """A fresh 3-member real etcd cluster (Debian's /usr/bin/etcd) on free ports."""
    _require_etcd()
    yield from _managed(request, EtcdCluster(size=CLUSTER_SIZE, tmp_dir=tmp_path))


@pytest.fixture(params=STORE_KINDS)
def store_cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreClusterHandle]:
    """A fresh 3-member store cluster, once per kind in STORE_KINDS."""
    kind = request.param
    if kind == "etcd":
        _require_etcd()
    yield from _managed(request, CLUSTER_FACTORIES[kind](size=CLUSTER_SIZE, tmp_dir=tmp_path))


@pytest.fixture(scope="module", params=STORE_KINDS)
def store_cluster_module(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StoreClusterHandle]:
    """One 3-member store cluster per kind in STORE_KINDS, shared by a whole module.

    Its logs are printed at the end of the module if any test failed meanwhile.
    """
    kind = request.param
    if kind == "etcd":
        _require_etcd()
    failed_before = request.session.testsfailed
    cluster = CLUSTER_FACTORIES[kind](
        size=CLUSTER_SIZE, tmp_dir=tmp_path_factory.mktemp(f"{kind}-cluster")
    )
    yield from _managed(
        request, cluster, module_failed=lambda: request.session.testsfailed > failed_before
    )


APISERVERS_PER_STORE = 2


@pytest.fixture(scope="module")
def apiservers_module(
    request: pytest.FixtureRequest,
    store_cluster_module: StoreClusterHandle,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ApiserverCluster]:
    """Two apiservers (TLS, tokens, RBAC) over the module's store cluster, bootstrapped:
    the system namespaces and default RBAC policy are in place when tests start."""
    failed_before = request.session.testsfailed
    cluster = ApiserverCluster(
        store_cluster_module,
        tmp_path_factory.mktemp(f"apiservers-{store_cluster_module.kind}"),
        count=APISERVERS_PER_STORE,
    )
    try:
        cluster.wait_bootstrapped()
    except BaseException:
        cluster.close()
        raise
    yield from _managed(
        request, cluster, module_failed=lambda: request.session.testsfailed > failed_before
    )


@pytest.fixture
def admin_api(apiservers_module: ApiserverCluster) -> Api:
    return Api(apiservers_module.urls[0], apiservers_module.paths.ca_cert,
               token=apiservers_module.admin_token)


@pytest.fixture
def namespace(request: pytest.FixtureRequest, admin_api: Api) -> str:
    """A fresh namespace named after the test (parameters included), created as admin."""
    readable = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")
    digest = hashlib.sha256(request.node.name.encode()).hexdigest()[:6]
    name = f"{readable[:50].strip('-')}-{digest}"
    reply = admin_api.post("/api/v1/namespaces", namespace_body(name))
    assert reply.code == 201, reply
    return name

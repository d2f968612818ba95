"""The informer against a scripted API, for what a real server will not do on cue: a
410 in the middle of a watch, a stream that breaks after some events, a clean end
after a bookmark, lists that fail. (tests/integration/test_api_client_ha.py runs it
against real apiservers.)"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from apiserver.client import ObjectList
from apiserver.client_policy import ApiStatusError, ApiUnavailable, status_body
from apiserver.informer import Informer, InformerError

T = TypeVar("T")
CLEAN_END = "end"
GONE = ApiStatusError(410, "Expired", status_body(410, "Expired", "too old resource version"))
BROKEN = ApiUnavailable("watch: the stream broke", maybe_applied=False, causes=["reset"])


def run(coro: Coroutine[Any, Any, T]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, 10)

    return asyncio.run(bounded())


def cm(name: str, rv: int, color: str = "red") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "ns", "resourceVersion": str(rv)},
            "data": {"color": color}}


def bookmark(rv: int) -> dict[str, Any]:
    return {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"resourceVersion": str(rv)}}


class FakeStream:
    """Yields its events, then ends, raises, or (script exhausted) waits forever."""

    def __init__(self, script: list[Any]) -> None:
        self.script = script

    async def __aenter__(self) -> FakeStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    async def __aiter__(self):
        for step in self.script:
            if step == CLEAN_END:
                return
            if isinstance(step, BaseException):
                raise step
            yield step
        await asyncio.Event().wait()


class FakeApi:
    """Each list() answers the next scripted list (or raises it); each watch() streams
    the next scripted watch. With the script used up, calls wait forever."""

    def __init__(self, lists: list[Any], watches: list[list[Any]]) -> None:
        self.lists = deque(lists)
        self.watches = deque(watches)
        self.calls: list[tuple[Any, ...]] = []

    async def list(self, path: str, *, label_selector: str | None = None,
                   field_selector: str | None = None) -> ObjectList:
        self.calls.append(("list", path, label_selector, field_selector))
        if not self.lists:
            await asyncio.Event().wait()
        answer = self.lists.popleft()
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def watch(self, path: str, resource_version: str | None = None, **options: Any) -> FakeStream:
        self.calls.append(("watch", resource_version, options["label_selector"]))
        return FakeStream(self.watches.popleft() if self.watches else [])


def recorder(informer: Informer) -> list[tuple[str, str, str]]:
    seen: list[tuple[str, str, str]] = []

    async def on_update(old: dict[str, Any], new: dict[str, Any]) -> None:
        await asyncio.sleep(0)  # coroutine handlers are awaited in order too
        seen.append(("update", new["metadata"]["name"], new["metadata"]["resourceVersion"]))

    informer.add_handlers(
        on_add=lambda o: seen.append(("add", o["metadata"]["name"],
                                      o["metadata"]["resourceVersion"])),
        on_update=on_update,
        on_delete=lambda o: seen.append(("delete", o["metadata"]["name"],
                                         o["metadata"]["resourceVersion"])))
    return seen


async def settle(check, what: str) -> None:
    for _ in range(200):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not reached: {what}")


def test_lists_then_watches_and_calls_handlers_in_order() -> None:
    async def body() -> None:
        api = FakeApi([ObjectList([cm("a", 3), cm("b", 4)], "10")],
                      [[("ADDED", cm("c", 11)), ("MODIFIED", cm("a", 12, "blue")),
                        ("DELETED", cm("b", 13)), ("BOOKMARK", bookmark(15))]])
        informer = Informer(api, "configmaps", namespace="ns", label_selector="app=x",
                            indexers={"by_color": lambda o: o["data"]["color"]})
        seen = recorder(informer)
        assert not informer.has_synced()
        async with informer:
            await informer.wait_synced(5)
            assert seen[:2] == [("add", "a", "3"), ("add", "b", "4")]
            await settle(lambda: informer.resource_version == "15", "bookmark seen")
            await settle(lambda: len(seen) == 5, "five events")
        assert seen[2:] == [("add", "c", "11"), ("update", "a", "12"), ("delete", "b", "13")]
        assert informer.keys() == ["ns/a", "ns/c"]
        assert informer.get("a")["data"]["color"] == "blue"
        assert [o["metadata"]["name"] for o in informer.by_index("by_color", "blue")] == ["a"]
        assert api.calls[:2] == [("list", "/api/v1/namespaces/ns/configmaps", "app=x", None),
                                 ("watch", "10", "app=x")]

    run(body())


@pytest.mark.parametrize("failure", [GONE, BROKEN], ids=["410-gone", "broken-stream"])
def test_relists_after_gone_or_a_broken_stream_with_the_right_deltas(failure) -> None:
    async def body() -> None:
        api = FakeApi(
            [ObjectList([cm("a", 3), cm("b", 4), cm("c", 5)], "10"),
             ObjectList([cm("a", 3), cm("c", 21, "blue"), cm("d", 22)], "30")],
            [[("MODIFIED", cm("a", 11)), failure], [("ADDED", cm("e", 31))]])
        informer = Informer(api, "configmaps", namespace="ns")
        seen = recorder(informer)
        async with informer:
            await informer.wait_synced(5)
            await settle(lambda: len(seen) == 9, "nine events")
            assert informer.lists == 2
        assert seen[3:] == [
            ("update", "a", "11"),  # from the watch
            ("update", "a", "3"),  # the re-list: a is back at its listed version
            ("update", "c", "21"), ("add", "d", "22"), ("delete", "b", "4"),
            ("add", "e", "31"),  # watching again, from the re-list's version
        ]
        assert [c[:2] for c in api.calls] == [
            ("list", "/api/v1/namespaces/ns/configmaps"), ("watch", "10"),
            ("list", "/api/v1/namespaces/ns/configmaps"), ("watch", "30")]
        assert informer.keys() == ["ns/a", "ns/c", "ns/d", "ns/e"]

    run(body())


def test_a_clean_end_watches_again_from_the_last_version_without_listing() -> None:
    async def body() -> None:
        api = FakeApi([ObjectList([], "10")],
                      [[("ADDED", cm("a", 11)), ("BOOKMARK", bookmark(14)), CLEAN_END],
                       [("MODIFIED", cm("a", 15))]])
        informer = Informer(api, "configmaps")
        seen = recorder(informer)
        async with informer:
            await settle(lambda: len(seen) == 2, "two events")
        assert seen == [("add", "a", "11"), ("update", "a", "15")]
        assert [c[:2] for c in api.calls] == [("list", "/api/v1/configmaps"), ("watch", "10"),
                                              ("watch", "14")]
        assert informer.lists == 1

    run(body())


def test_list_failures_are_retried_and_handler_errors_do_not_stop_delivery(
        caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        unavailable = ApiUnavailable("GET: no apiserver answered", maybe_applied=False,
                                     causes=[])
        api = FakeApi([unavailable, unavailable, ObjectList([cm("a", 1), cm("b", 2)], "5")],
                      [[("MODIFIED", cm("b", 6))]])
        informer = Informer(api, "configmaps")
        seen: list[str] = []

        def on_add(obj: dict[str, Any]) -> None:
            if obj["metadata"]["name"] == "a":
                raise RuntimeError("handler bug")
            seen.append(obj["metadata"]["name"])

        informer.add_handlers(on_add=on_add, on_update=lambda old, new: seen.append("upd"))
        async with informer:
            with pytest.raises(TimeoutError):
                await informer.wait_synced(0.05)
            await informer.wait_synced(5)
            await settle(lambda: seen == ["b", "upd"], "b and its update")
        assert informer.lists == 1
        assert "handler bug" in caplog.text and "add handler failed" in caplog.text
        assert "no apiserver answered" in caplog.text

    with caplog.at_level(logging.WARNING, logger="apiserver.informer"):
        run(body())


def test_misuse_is_refused() -> None:
    async def body() -> None:
        informer = Informer(FakeApi([], []), "pods")
        with pytest.raises(RuntimeError):
            await informer.wait_synced(1)
        await informer.start()
        with pytest.raises(RuntimeError):
            informer.add_handlers(on_add=print)
        with pytest.raises(RuntimeError):
            await informer.start()
        await informer.stop()
        with pytest.raises(InformerError):
            await informer.wait_synced(1)  # stopped before it ever synced

    run(body())


def test_cluster_scoped_and_unknown_resources() -> None:
    assert Informer(FakeApi([], []), "nodes").path == "/api/v1/nodes"
    assert Informer(FakeApi([], []), "deployments.apps", namespace="p").path == \
        "/apis/apps/v1/namespaces/p/deployments"
    with pytest.raises(ValueError):
        Informer(FakeApi([], []), "widgets")
    with pytest.raises(ValueError):
        Informer(FakeApi([], []), "nodes", namespace="default")

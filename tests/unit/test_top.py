"""`kubelite top nodes`: kubectl's layout and arithmetic, fed by a real Summary API server."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from agents import measure, top
from agents.stats import NodeUsage, PodUsage, stats_summary
from agents.top import NodeRow
from tests import ports


def node(name: str, cpu: str = "2", memory: str = "4Gi") -> dict[str, Any]:
    return {"metadata": {"name": name}, "status": {"allocatable": {"cpu": cpu,
                                                                   "memory": memory}}}


def test_table_matches_kubectl_top_nodes() -> None:
    rows = [NodeRow("node-1", NodeUsage(250_000_000, 1024 * 2**20), 2000, 4 * 2**30),
            NodeRow("n2", None, 1000, 2**30)]
    assert top.format_table(rows) == (
        "NAME     CPU(cores)   CPU(%)      MEMORY(bytes)   MEMORY(%)   \n"
        "node-1   250m         12%         1024Mi          25%         \n"
        "n2       <unknown>    <unknown>   <unknown>       <unknown>   \n")
    assert top.format_table(rows, headers=False).splitlines()[0].startswith("node-1   250m")
    assert top.format_table([]) == ""


def test_cells_round_as_kubectl_does() -> None:
    # cpu: MilliValue rounds up; memory: whole Mi, rounded down; percent truncated
    row = NodeRow("a", NodeUsage(250_000_001, 2**20 * 3 // 2), 3000, 7 * 2**20)
    assert top.cells(row) == ["a", "251m", "8%", "1Mi", "21%"]
    no_allocatable = NodeRow("b", NodeUsage(0, 0), None, 0)
    assert top.cells(no_allocatable) == ["b", "0m", "<unknown>", "0Mi", "<unknown>"]


def test_rows_sort_by_name_or_largest_use_first_unknown_last() -> None:
    rows = [NodeRow("b", NodeUsage(1, 300), 1, 1), NodeRow("zz", None, 1, 1),
            NodeRow("a", NodeUsage(3, 100), 1, 1), NodeRow("c", NodeUsage(2, 200), 1, 1),
            NodeRow("aa", None, 1, 1)]
    names = [[r.name for r in top.sort_rows(rows, by)] for by in ("", "cpu", "memory")]
    assert names == [["a", "b", "c", "aa", "zz"], ["a", "c", "b", "aa", "zz"],
                     ["b", "c", "a", "aa", "zz"]]


def test_node_row_reads_allocatable_and_summary() -> None:
    summary = {"node": {"cpu": {"usageNanoCores": 5}, "memory": {"workingSetBytes": 7}}}
    assert top.node_row(node("x", "1900m", "7836Mi"), summary) == \
        NodeRow("x", NodeUsage(5, 7), 1900, 7836 * 2**20)
    assert top.node_row(node("x", "bogus"), None) == NodeRow("x", None, None, 4 * 2**30)


def test_help_and_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        top.main(["--help"])
    assert exit_info.value.code == 0
    assert "Summary API" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        top.main(["pods"])
    assert exit_info.value.code == 2


# --- against a real Summary API server ------------------------------------------------------


class SummaryServer:
    """An aiohttp server on 127.0.0.1 serving /stats/summary from this machine's usage
    for any node but "broken", which answers 500."""

    def __init__(self, port: int) -> None:
        self.sampler = measure.UsageSampler()
        self.runner: web.AppRunner | None = None
        self.port = port

    async def start(self) -> None:
        async def summary(request: web.Request) -> web.Response:
            name = request.match_info["node"]
            if name == "broken":
                return web.Response(status=500, text="boom")
            usage = self.sampler.usage()
            pods = [PodUsage("p", "default", "uid", *measure.process_usage([]), usage.timestamp)]
            return web.json_response(stats_summary(name, usage, pods))

        app = web.Application()
        app.router.add_get("/{node}/stats/summary", summary)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


def test_top_nodes_from_a_real_summary_server() -> None:
    """Node "silent" is fetched from a reserved port nothing listens on."""
    serving, silent = ports.free_ports(2)

    async def scenario() -> tuple[list[NodeRow], str]:
        server = SummaryServer(serving)
        try:
            await server.start()
            async with aiohttp.ClientSession() as session:
                async def fetch(name: str) -> Mapping[str, Any]:
                    port = silent if name == "silent" else serving
                    url = f"http://127.0.0.1:{port}/{name}/stats/summary"
                    async with session.get(url) as resp:
                        resp.raise_for_status()
                        return await resp.json()

                nodes = [node("good", "2", "4Gi"), node("broken"), node("silent")]
                await fetch("good")  # the first reading has no cpu rate yet
                rows = await top.top_nodes(nodes, fetch)
        finally:
            await server.stop()
        return rows, top.format_table(rows)

    try:
        rows, table = asyncio.run(asyncio.wait_for(scenario(), 30))
    finally:
        ports.release([serving, silent])
    by_name = {r.name: r for r in rows}
    good = by_name["good"].usage
    assert good is not None and good.memory_working_set_bytes > 0
    assert by_name["broken"].usage is None and by_name["silent"].usage is None
    lines = table.splitlines()
    assert lines[0].split() == list(top.COLUMNS)
    cells = lines[1].split()
    assert cells[0] == "good" and cells[1].endswith("m") and cells[2].endswith("%")
    assert cells[3] == f"{good.memory_working_set_bytes // 2**20}Mi"
    assert [line.split()[0] for line in lines[2:]] == ["broken", "silent"]
    assert all(line.split()[1:] == ["<unknown>"] * 4 for line in lines[2:])

"""`kubelite top nodes`: each node's cpu and memory use, as `kubectl top nodes` shows it.

kubectl asks metrics-server, which scrapes every kubelet's Summary API. Here the
command does that scrape itself: it lists the Nodes, then reads each node agent's
`/stats/summary` through the apiserver's node proxy
(`GET /api/v1/nodes/<name>/proxy/stats/summary`), and prints what metrics-server would
have served, in kubectl's layout:

    NAME     CPU(cores)   CPU(%)   MEMORY(bytes)   MEMORY(%)
    node-1   250m         12%      1024Mi          25%
    node-2   <unknown>    <unknown>   <unknown>    <unknown>

cpu is the node's usageNanoCores (in millicores, rounded up as Quantity.MilliValue
does), memory its workingSetBytes (in whole Mi, rounded down); the percentages are of
the Node's allocatable and truncated, as kubectl computes them. Nodes are sorted by
name (or by --sort-by cpu|memory, largest first, as kubectl sorts them); a node
whose summary cannot be fetched, or has no cpu rate yet, is listed with `<unknown>`.

The formatting is pure (`format_table`, `cells`); `top_nodes` takes the nodes and the
fetch as arguments (`proxy_fetch(api)` in the command), so it can be pointed at any
server that speaks the Summary API.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import aiohttp

from agents import stats
from apiserver.client import ApiClient, ApiStatusError
from apiserver.quantities import bytes_value, cpu_millis

FetchSummary = Callable[[str], Awaitable[Mapping[str, Any]]]

COLUMNS = ("NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)")
UNKNOWN = "<unknown>"
MI = 1024 * 1024
FETCH_CONCURRENCY = 16
FETCH_TIMEOUT = 10.0
# Go's tabwriter as kubectl sets it up: minwidth 6, padding 3, every cell tab-ended.
TAB_MIN_WIDTH, TAB_PADDING = 6, 3


class NodeRow(NamedTuple):
    name: str
    usage: stats.NodeUsage | None  # None: unknown
    allocatable_cpu_millis: int | None
    allocatable_memory_bytes: int | None


# --- pure: rows and the table -------------------------------------------------------


def node_row(node: Mapping[str, Any], summary: Mapping[str, Any] | None) -> NodeRow:
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    return NodeRow(str((node.get("metadata") or {}).get("name") or ""),
                   stats.node_usage(summary) if summary is not None else None,
                   _quantity(allocatable.get("cpu"), cpu_millis),
                   _quantity(allocatable.get("memory"), bytes_value))


def cells(row: NodeRow) -> list[str]:
    """NAME, CPU(cores), CPU(%), MEMORY(bytes), MEMORY(%) of one node."""
    if row.usage is None:
        return [row.name, UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN]
    millis = -(-row.usage.cpu_nanocores // 1_000_000)  # MilliValue rounds up
    memory = row.usage.memory_working_set_bytes
    return [row.name, f"{millis}m", _percent(millis, row.allocatable_cpu_millis),
            f"{memory // MI}Mi", _percent(memory * 1000, _milli(row.allocatable_memory_bytes))]


def _percent(used_milli: int, available_milli: int | None) -> str:
    if not available_milli:
        return UNKNOWN
    return f"{int(used_milli / available_milli * 100)}%"


def _milli(value: int | None) -> int | None:
    return value * 1000 if value is not None else None


def sort_rows(rows: Sequence[NodeRow], sort_by: str = "") -> list[NodeRow]:
    """Known nodes by name (or largest cpu/memory first), then the unknown ones by name."""
    known = [(r, r.usage) for r in rows if r.usage is not None]
    unknown = sorted((r for r in rows if r.usage is None), key=lambda r: r.name)
    if sort_by == "cpu":
        known.sort(key=lambda pair: (-pair[1].cpu_nanocores, pair[0].name))
    elif sort_by == "memory":
        known.sort(key=lambda pair: (-pair[1].memory_working_set_bytes, pair[0].name))
    else:
        known.sort(key=lambda pair: pair[0].name)
    return [r for r, _ in known] + unknown


def format_table(rows: Sequence[NodeRow], *, headers: bool = True,
                 sort_by: str = "") -> str:
    """The table as kubectl prints it (trailing padding included, as tabwriter leaves it)."""
    if not rows:
        return ""
    lines = [list(COLUMNS)] if headers else []
    lines += [cells(r) for r in sort_rows(rows, sort_by)]
    widths = [max(TAB_MIN_WIDTH, max(len(line[i]) for line in lines) + TAB_PADDING)
              for i in range(len(COLUMNS))]
    return "".join("".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) + "\n"
                   for line in lines)


def _quantity(raw: object, convert: Callable[[str], int]) -> int | None:
    if not isinstance(raw, str):
        return None
    try:
        return convert(raw)
    except ValueError:
        return None


# --- I/O: nodes and their summaries ---------------------------------------------------


def summary_path(node: str) -> str:
    return f"/api/v1/nodes/{node}/proxy/stats/summary"


async def top_nodes(nodes: Sequence[Mapping[str, Any]],
                    fetch_summary: FetchSummary) -> list[NodeRow]:
    """Each node with its usage; a summary that cannot be had makes that row unknown."""
    gate = asyncio.Semaphore(FETCH_CONCURRENCY)

    async def one(node: Mapping[str, Any]) -> NodeRow:
        name = str((node.get("metadata") or {}).get("name") or "")
        async with gate:
            try:
                summary = await asyncio.wait_for(fetch_summary(name), FETCH_TIMEOUT)
            except (ApiStatusError, aiohttp.ClientError, OSError, TimeoutError, ValueError):
                summary = None
        return node_row(node, summary if isinstance(summary, Mapping) else None)

    return list(await asyncio.gather(*(one(n) for n in nodes)))


def proxy_fetch(api: ApiClient) -> FetchSummary:
    """Summaries through the apiserver's node proxy."""
    async def fetch(name: str) -> Mapping[str, Any]:
        return await api.get(summary_path(name), timeout=FETCH_TIMEOUT)

    return fetch


# --- the command ----------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kubelite top",
        description="Show the cpu and memory use of nodes, read from each node agent's "
                    "Summary API through the apiserver's node proxy (what `kubectl top "
                    "nodes` shows with metrics-server). Percentages are of the node's "
                    "allocatable; a node whose agent does not answer shows <unknown>.")
    p.add_argument("resource", choices=("nodes", "node", "no"), help="what to show: nodes")
    p.add_argument("--kubeconfig", default=None,
                   help="kubeconfig to use (default: $KUBECONFIG, else ~/.kube/config)")
    p.add_argument("--no-headers", action="store_true", help="leave the header line out")
    p.add_argument("--sort-by", choices=("cpu", "memory"), default="",
                   help="sort by cpu or memory use instead of by name")
    return p


def default_kubeconfig() -> Path:
    env = os.environ.get("KUBECONFIG", "")
    first = env.split(os.pathsep)[0] if env else ""
    return Path(first) if first else Path.home() / ".kube" / "config"


async def _run(kubeconfig: Path, headers: bool, sort_by: str) -> str:
    async with ApiClient.from_kubeconfig(kubeconfig, timeout=15.0) as api:
        nodes = (await api.list(api.path("v1", "nodes"))).items
        rows = await top_nodes(nodes, proxy_fetch(api))
    return format_table(rows, headers=headers, sort_by=sort_by)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    kubeconfig = Path(args.kubeconfig) if args.kubeconfig else default_kubeconfig()
    try:
        table = asyncio.run(_run(kubeconfig, not args.no_headers, args.sort_by))
    except (ApiStatusError, OSError, ValueError) as exc:
        print(f"kubelite top: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())

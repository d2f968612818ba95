"""Progress of a fleet operation, one line per machine.

On a terminal with `rich` installed, a live table shows each machine's current step;
otherwise (a pipe, a CI log, no rich) each step is printed as a plain line
`machine: step`. Every step also goes to the `kubelite` logger, i.e. into up.log.
Thread-safe: machines are worked on in parallel threads.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Any

log = logging.getLogger("kubelite.provisioning")


class Progress:
    def __init__(self, machines: list[str], *, title: str = "", stream: Any = None,
                 fancy: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.title = title
        self.steps: dict[str, str] = {m: "waiting" for m in machines}
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._live: Any = None
        if fancy is None:
            fancy = bool(getattr(self.stream, "isatty", lambda: False)())
        if fancy:
            try:
                from rich.console import Console
                from rich.live import Live
            except ImportError:
                fancy = False
            else:
                self._live = Live(self._table(), console=Console(file=self.stream),
                                  refresh_per_second=8)
        self.fancy = fancy

    def _table(self) -> Any:
        from rich.table import Table

        table = Table(title=self.title or None)
        table.add_column("machine")
        table.add_column("step")
        for name, step in self.steps.items():
            table.add_row(name, step)
        return table

    def __enter__(self) -> Progress:
        if self._live is not None:
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)

    def step(self, machine: str, text: str) -> None:
        log.info("%s: %s", machine, text)
        with self._lock:
            self.steps[machine] = text
            if self._live is not None:
                self._live.update(self._table())
            else:
                elapsed = time.monotonic() - self.started
                print(f"[{elapsed:5.1f}s] {machine}: {text}", file=self.stream, flush=True)

    def note(self, text: str) -> None:
        """A fleet-wide step (waiting for the store's leader, ...)."""
        self.step("fleet", text)

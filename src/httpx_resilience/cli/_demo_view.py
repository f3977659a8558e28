"""The demo's live view (rich): each client's progress and the breaker's state, then the table.

Imported only when the demo prints for a person; ``rich`` comes with the
``cli`` extra (:mod:`.demo` says how to install it when it is missing).
"""

from __future__ import annotations

import threading
from pathlib import Path
from types import TracebackType

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ._demo_run import ClientRun, DemoRun, RequestRecord, Scenario

__all__ = ["LiveView"]

_LABELS = {"plain": "plain httpx", "ours": "httpx-resilience"}
_STATE_STYLE = {"closed": "green", "open": "bold red", "half_open": "yellow"}


class LiveView:
    """Shows the run as it goes (``live=False``: only the final table)."""

    def __init__(
        self, scenario: Scenario, requests: int, concurrency: int, seed: int, *, live: bool = True
    ) -> None:
        self.scenario, self.requests, self.live = scenario, requests, live
        self.console = Console()
        self.plain, self.ours = ClientRun("plain"), ClientRun("ours")
        self._lock = threading.Lock()
        self._live: Live | None = None
        self.console.print(
            f"[bold]httpx-resilience demo[/] · scenario [bold]{scenario.name}[/]: "
            f"{scenario.summary}.\n{requests} requests per client, {concurrency} in flight "
            f"each, seed {seed}, against an embedded chaos server on loopback."
        )

    def __enter__(self) -> LiveView:
        if self.live:
            self._live = Live(self._render(), console=self.console, refresh_per_second=8)
            self._live.__enter__()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._live.update(self._render())
            self._live.__exit__(kind, exc, tb)
            self._live = None

    def tick(self, _name: str, _record: RequestRecord) -> None:
        """Called after each request of either client."""
        if self._live is not None:
            self._live.update(self._render())

    def _row(self, run: ClientRun) -> Text:
        done = run.requests
        width = 16
        filled = int(width * done / max(self.requests, 1))
        failed = done - run.succeeded
        line = Text(f"{_LABELS[run.name]:<17} ")
        line.append("━" * filled, style="blue" if run.name == "ours" else "grey50")
        line.append("━" * (width - filled), style="grey23")
        line.append(f" {done:>4}/{self.requests} ok {run.succeeded:>4} failed {failed:>4}")
        if run.name == "ours":
            state = run.breaker[-1][1] if run.breaker else "closed"
            line.append(" breaker ")
            line.append(state.replace("_", "-"), style=_STATE_STYLE.get(state, ""))
            if run.limiter_waits:
                line.append(f" waits {len(run.limiter_waits)}")
        return line

    def _render(self) -> Group:
        return Group(self._row(self.plain), self._row(self.ours))

    def summary(self, result: DemoRun, verdict: str, ok: bool, report: Path | None) -> None:
        """The side-by-side table, the failures, the verdict and where the report went."""
        table = Table(title="Same requests, same faults")
        for col in ("client", "success", "upstream", "p50", "p99", "POSTs sent twice"):
            table.add_column(col, justify="left" if col == "client" else "right", no_wrap=True)
        for r in (result.plain, result.ours):
            table.add_row(
                _LABELS[r.name],
                f"{r.success_rate:.1%}",
                f"{r.upstream} ({r.amplification:.2f}×)",
                f"{r.percentile(0.5) * 1000:.0f} ms",
                f"{r.percentile(0.99) * 1000:.0f} ms",
                str(r.duplicates),
            )
        self.console.print(table)
        for r in (result.plain, result.ours):
            failures = ", ".join(f"{k} ×{v}" for k, v in list(r.failures().items())[:4]) or "none"
            self.console.print(f"  {_LABELS[r.name]} failures: {failures}")
        style = "bold green" if ok else "bold red"
        self.console.print(f"[{style}]{verdict}.[/]")
        if report is not None:
            self.console.print(f"Report: [bold]{report}[/] (open it in a browser)")

"""``httpx-resilience chaos serve``: a ChaosServer in the foreground, with live counters.

Routes and faults come from a TOML profile (:mod:`._profile`) or from each
request's query string (``?status=503,503,200``, ``?latency=0.5``, …). While
it serves, a live table (rich, from the ``cli`` extra) shows the requests per
route and the connections; at the end the totals are printed.
"""

from __future__ import annotations

import contextlib
import sys
import threading

from ..testing.chaos import ChaosServer
from ._profile import ProfileError, load_profile

__all__ = ["run_chaos"]


def _table(server: ChaosServer, paths: list[str]) -> object:
    from rich.table import Table

    table = Table(title=f"ChaosServer on {server.url}", title_justify="left")
    table.add_column("route")
    table.add_column("requests", justify="right")
    for path in paths:
        table.add_row(path, str(server.count(path)))
    other = server.count() - sum(server.count(p) for p in paths)
    table.add_row("[dim]other paths[/]", str(other))
    table.add_row("[bold]all[/]", f"[bold]{server.count()}[/] on {server.connections_opened} "
                  "connections")
    return table


def _wait(server: ChaosServer, paths: list[str], duration: float, live: bool) -> None:
    stop = threading.Event()
    if not live:
        if duration > 0:
            stop.wait(duration)
        else:  # pragma: no cover - interactive
            with contextlib.suppress(KeyboardInterrupt):
                server.serve_forever()
        return
    from rich.live import Live

    with Live(_table(server, paths), refresh_per_second=4) as view:  # type: ignore[arg-type]
        waited = 0.0
        with contextlib.suppress(KeyboardInterrupt):
            while duration <= 0 or waited < duration:
                step = 0.25 if duration <= 0 else min(0.25, duration - waited)
                stop.wait(step)
                waited += step
                view.update(_table(server, paths))  # type: ignore[arg-type]


def run_chaos(
    port: int | None = None, duration: float = 0.0, profile: str | None = None, live: bool = True
) -> int:
    """Serve until Ctrl-C (or ``duration`` seconds); 2 when the profile is wrong."""
    routes = None
    if profile is not None:
        try:
            routes = load_profile(profile)
        except ProfileError as exc:
            print(f"chaos: {exc}", file=sys.stderr)
            return 2
    chosen = port if port is not None else (routes.port if routes and routes.port else 0)
    if live:
        try:
            import rich  # noqa: F401
        except ImportError:
            live = False
    with ChaosServer(port=chosen) as server:
        paths: list[str] = []
        if routes is not None:
            routes.install(server)
            paths = [r["path"] for r in routes.routes]
        print(f"ChaosServer listening on {server.url}", flush=True)
        if routes is None:
            print(f"  try: curl '{server.url}/x?status=503,503,200'")
            print("       or ?latency=0.5, ?reset=before_headers, ?retry_after=3, ?hang=1")
        else:
            print(f"  {len(paths)} route(s) from {profile}: {', '.join(paths)}")
        _wait(server, paths, duration, live)
        print(f"served {server.count()} requests on {server.connections_opened} connections")
    return 0

"""``httpx-resilience chaos``: a ChaosServer in the foreground, for manual experiments."""

from __future__ import annotations

import contextlib
import threading

from ..testing.chaos import ChaosServer

__all__ = ["run_chaos"]


def run_chaos(port: int = 0, duration: float = 0.0) -> int:
    """Serve until Ctrl-C (or ``duration`` seconds); faults are chosen by query string."""
    with ChaosServer(port=port) as server:
        print(f"ChaosServer listening on {server.url}")
        print(f"  try: curl '{server.url}/x?status=503,503,200'")
        print("       or ?latency=0.5, ?reset=before_headers, ?retry_after=3, ?hang=1")
        if duration > 0:
            threading.Event().wait(duration)  # the server runs in its own thread
        else:  # pragma: no cover - interactive
            with contextlib.suppress(KeyboardInterrupt):
                server.serve_forever()
        print(f"served {server.count()} requests")
    return 0

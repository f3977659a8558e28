"""The chaos server's book: routes, per-route progress, counts and records.

Test code programs routes and reads counts and records from its own thread
while the server thread admits and records requests, so one lock guards all
of it and every method of :class:`_Ledger` is thread-safe. Deciding an answer
is :func:`~httpx_resilience.testing._faults._resolve`'s job; the ledger keeps
the state it works on.
"""

from __future__ import annotations

import random
import threading
from collections import deque

from ._faults import _DEFAULT_ROUTE, Fault, Route, _resolve, _route_from_query, _RouteState
from ._records import RecordedRequest, UploadMismatch

_MAX_MISMATCHES = 1000  # kept for inspection; the count stays exact

__all__ = ["_Ledger"]


class _Ledger:
    """What a ``ChaosServer`` was programmed to do and what it saw, behind one lock.

    Args:
        max_records: how many :class:`RecordedRequest` to keep (the oldest go
            first); counts stay exact regardless. ``None`` keeps all.
    """

    def __init__(self, max_records: int | None) -> None:
        self._lock = threading.Lock()  # guards routes, states, counts and records
        self._routes: dict[str, Route] = {}
        self._query_routes: dict[str, Route | None] = {}
        self._states: dict[str, _RouteState] = {}
        self._total = 0
        self._by_path: dict[str, int] = {}
        self._by_target: dict[str, int] = {}
        self._records: deque[RecordedRequest] = deque(maxlen=max_records)
        self._connections_opened = 0
        self._uploads_checked = 0
        self._mismatch_count = 0
        self._mismatches: deque[UploadMismatch] = deque(maxlen=_MAX_MISMATCHES)
        self._once_seen: set[str] = set()
        self._duplicates: dict[str, int] = {}

    # -- programming -------------------------------------------------------

    def add_route(self, route: Route) -> None:
        """Install ``route`` (replacing the one for its path) and restart its sequence.

        The request count of the path goes on: :meth:`count` counts every request that
        arrived, whatever route answered it.
        """
        with self._lock:
            self._routes[route.path] = route
            self._states.pop(route.path, None)

    def reset(self) -> None:
        """Forget every route, count and record."""
        with self._lock:
            self._routes.clear()
            self._query_routes.clear()
            self._states.clear()
            self._total = 0
            self._by_path.clear()
            self._by_target.clear()
            self._records.clear()
            self._connections_opened = 0
            self._uploads_checked = 0
            self._mismatch_count = 0
            self._mismatches.clear()
            self._once_seen.clear()
            self._duplicates.clear()

    # -- accounting --------------------------------------------------------

    @property
    def route_count(self) -> int:
        """How many routes are programmed (read without the lock, for ``repr``)."""
        return len(self._routes)

    @property
    def total(self) -> int:
        """How many requests arrived (read without the lock, for ``repr``)."""
        return self._total

    def count(self, path: str | None = None) -> int:
        """How many requests arrived: all, for a path, or for an exact target."""
        with self._lock:
            if path is None:
                return self._total
            if "?" in path:
                return self._by_target.get(path, 0)
            return self._by_path.get(path, 0)

    @property
    def connections_opened(self) -> int:
        """How many TCP connections were accepted."""
        with self._lock:
            return self._connections_opened

    def requests(self, path: str | None = None) -> list[RecordedRequest]:
        """The recorded requests, oldest first, filtered as in :meth:`count`."""
        with self._lock:
            records = list(self._records)
        if path is None:
            return records
        if "?" in path:
            return [r for r in records if r.target == path]
        return [r for r in records if r.path == path]

    @property
    def uploads_checked(self) -> int:
        """How many uploads were checked against their declared length and hash."""
        with self._lock:
            return self._uploads_checked

    def upload_mismatches(self) -> tuple[int, list[UploadMismatch]]:
        """How many uploads failed their check, and the most recent of them."""
        with self._lock:
            return self._mismatch_count, list(self._mismatches)

    def duplicates(self) -> dict[str, int]:
        """The once-only ids that arrived more than once, with how often each arrived."""
        with self._lock:
            return dict(self._duplicates)

    def by_path(self) -> dict[str, int]:
        """Request counts per path."""
        with self._lock:
            return dict(self._by_path)

    # -- the server thread -------------------------------------------------

    def saw_once(self, once: str) -> None:
        """Count an arrival of a once-only id (called when the request head is read)."""
        with self._lock:
            if once in self._once_seen:
                self._duplicates[once] = self._duplicates.get(once, 1) + 1
            else:
                self._once_seen.add(once)

    def checked(self, mismatch: UploadMismatch | None) -> None:
        """Count an upload check and keep its mismatch, if any."""
        with self._lock:
            self._uploads_checked += 1
            if mismatch is not None:
                self._mismatch_count += 1
                self._mismatches.append(mismatch)

    def open_connection(self) -> int:
        """Count a new TCP connection; return its serial number (from 1)."""
        with self._lock:
            self._connections_opened += 1
            return self._connections_opened

    def record(self, request: RecordedRequest) -> None:
        """Keep ``request`` (its body arrived in full)."""
        with self._lock:
            self._records.append(request)

    def admit(self, path: str, query: str, target: str, now: float) -> tuple[Fault, int]:
        """Count the request and decide its answer (called when its head is read)."""
        with self._lock:
            self._total += 1
            self._by_path[path] = self._by_path.get(path, 0) + 1
            if query:
                self._by_target[target] = self._by_target.get(target, 0) + 1
            route, key = self._lookup(path, query, target)
            state = self._states.get(key)
            if state is None:
                rng = random.Random(route.mix.seed) if route.mix is not None else None
                state = self._states[key] = _RouteState(rng=rng)
            state.n += 1
            return _resolve(route, state, now), state.n

    def _lookup(self, path: str, query: str, target: str) -> tuple[Route, str]:
        """The route for a request and the key its sequence is counted under."""
        if query:
            if target in self._query_routes:
                from_query = self._query_routes[target]
            else:
                try:
                    from_query = _route_from_query(path, query)
                except ValueError as exc:
                    from_query = Route(path=path, fault=Fault(status=400, body={"error": str(exc)}))
                if len(self._query_routes) > 10_000:  # a benchmark with unique queries
                    self._query_routes.clear()
                self._query_routes[target] = from_query
            if from_query is not None:
                return from_query, target
        return self._routes.get(path, _DEFAULT_ROUTE), path

"""A real HTTP/1.1 server on loopback that misbehaves on request.

:class:`ChaosServer` runs an asyncio event loop in a daemon thread and speaks
just enough HTTP/1.1 (keep-alive, ``Content-Length`` and chunked request
bodies, ``Expect: 100-continue``) to be driven by httpx, curl or a raw socket.
Every fault is produced at the TCP level, so a client under test sees exactly
what it would see from a broken upstream: a reset connection, a body cut
short, a response that drips in or never comes.

Faults are programmed per path with :meth:`ChaosServer.route`, or per request
with the query string on *any* path, so a test needs no setup at all::

    GET /orders?status=503,503,200        503, 503, then 200 forever
    GET /slow?latency=0.2                 answers after 200 ms
    GET /boom?reset=before_headers&times=2   RST twice, then 200

Every request is counted as soon as its head has been read (so a request the
server then resets or leaves hanging still counts) and recorded with its
headers and body, which lets a test prove that a POST was sent exactly once or
that every attempt carried the same ``Idempotency-Key``. Each response
carries ``x-chaos-n``: the request's number on its route, from 1.

Uploads can be proven whole: a request carrying the headers of
:func:`upload_headers` (the payload's length and SHA-256) is checked when its
body has arrived, and a mismatch is counted, kept and answered with 422. An id
sent in ``X-Chaos-Once`` is expected to arrive once; :meth:`ChaosServer.duplicates`
lists those that arrived more often (a POST sent twice).

This module is the server's interface; its parts live in private modules:
``_fault`` (:class:`Fault`), ``_faults`` (:class:`FaultMix`, :class:`Route`
and how a route answers), ``_records`` (what was received, upload checks), ``_ledger`` (counts and
records behind one lock), ``_thread`` (the event loop in a daemon thread and
its start and stop), ``_connection`` (one connection's requests read,
recorded and answered), ``_http`` (request parsing, raw answers) and
``_respond`` (a fault written to the wire).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Final

from ._connection import _serve_connection
from ._faults import Body, Fault, FaultMix, ResetMode, RetryAfter, Route
from ._http import _HEAD_LIMIT
from ._ledger import _Ledger
from ._records import (
    EXPECT_LENGTH_HEADER,
    EXPECT_SHA256_HEADER,
    ONCE_HEADER,
    RecordedHeaders,
    RecordedRequest,
    UploadMismatch,
    upload_headers,
)
from ._thread import _ServerThread

__all__ = [
    "EXPECT_LENGTH_HEADER",
    "EXPECT_SHA256_HEADER",
    "ONCE_HEADER",
    "ChaosServer",
    "Fault",
    "FaultMix",
    "RecordedHeaders",
    "RecordedRequest",
    "ResetMode",
    "Route",
    "UploadMismatch",
    "upload_headers",
]

_STOP_JOIN_TIMEOUT: Final = 5.0

# The classes live in private modules but are documented, imported and pickled
# from here, as they were before the split.
for _cls in (Fault, FaultMix, RecordedHeaders, RecordedRequest, Route, UploadMismatch):
    _cls.__module__ = __name__
del _cls


class ChaosServer:
    """A real HTTP/1.1 server on loopback with programmable faults.

    It runs in a daemon thread with its own event loop, so the same instance
    serves sync and async tests alike. All methods are thread-safe.

    Example::

        with ChaosServer() as server:
            server.route("/pay", statuses=[503, 503, 200], retry_after=1)
            response = httpx.post(server.url_for("/pay"))
            assert server.count("/pay") == 1

    Args:
        host: the interface to bind to.
        port: the port; ``0`` picks a free one (see :attr:`port` after start).
        max_records: how many :class:`RecordedRequest` to keep (the oldest go
            first); :meth:`count` stays exact regardless. ``None`` keeps all.
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, max_records: int | None = 10_000
    ) -> None:
        self.host = host
        self._ledger = _Ledger(max_records)  # routes, counts and records, behind one lock
        self._server = _ServerThread(  # the event loop in a daemon thread
            host,
            port,
            functools.partial(_serve_connection, ledger=self._ledger),
            name=f"httpx-resilience-chaos-{id(self):x}",
            limit=_HEAD_LIMIT,
        )

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> ChaosServer:
        """Bind and start serving in a background thread; a no-op when running.

        Returns:
            the server itself, for chaining.

        Raises:
            OSError: when the address cannot be bound.
            RuntimeError: when the server thread does not come up within 10 s.
        """
        self._server.start()
        return self

    def stop(self, timeout: float = _STOP_JOIN_TIMEOUT) -> None:
        """Close every connection (hung ones included) and join the thread.

        Idempotent; returns after at most about ``timeout`` seconds even if
        the thread does not finish (it is a daemon and cannot block exit).

        Args:
            timeout: how long to wait for the server thread.
        """
        self._server.stop(timeout)

    def serve_forever(self) -> None:
        """Start (if needed) and block until :meth:`stop` is called or Ctrl-C."""
        thread = self.start()._server.thread
        try:
            while thread is not None and thread.is_alive():
                thread.join(0.5)
        finally:
            self.stop()

    def __enter__(self) -> ChaosServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> ChaosServer:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    # -- addresses ---------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the server is accepting connections."""
        return self._server.thread is not None

    @property
    def port(self) -> int:
        """The bound port.

        Raises:
            RuntimeError: when the server is not running.
        """
        port = self._server.port
        if port is None:
            raise RuntimeError(
                "ChaosServer is not running: call start() or use `with ChaosServer() as server:`"
            )
        return port

    @property
    def url(self) -> str:
        """The base URL, e.g. ``"http://127.0.0.1:54321"`` (no trailing slash)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def url_for(self, path: str = "/") -> str:
        """The absolute URL of ``path`` (which may carry a query string)."""
        return f"{self.url}{path if path.startswith('/') else '/' + path}"

    # -- programming -------------------------------------------------------

    def route(
        self,
        path: str,
        *,
        status: int | None = None,
        statuses: Sequence[int] | None = None,
        steps: Sequence[Fault] | None = None,
        times: int | None = None,
        rate_limit: int | None = None,
        mix: FaultMix | None = None,
        latency: float = 0.0,
        hang: bool = False,
        retry_after: RetryAfter | None = None,
        reset: ResetMode | None = None,
        truncate: bool = False,
        drip: float = 0.0,
        drip_chunk: int = 16,
        close: bool = False,
        malformed_json: bool = False,
        body: Body | None = None,
        body_size: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Route:
        """Program what ``path`` answers; replaces any earlier route and restarts its sequence.

        The path's request count goes on (:meth:`count` counts every request
        that arrived, whatever route answered it).

        The fault keywords are those of :class:`Fault`; the route keywords
        those of :class:`Route`. A query string naming a fault still wins over
        the route for that request.

        Args:
            path: the exact path (no query string), e.g. ``"/orders"``.
            status: a fixed status (default 200).
            statuses: a status per request, the last repeating, e.g. ``[503, 503, 200]``.
            steps: a whole :class:`Fault` per request, the last repeating.
            times: fault only the first ``times`` requests, then answer a healthy 200.
            rate_limit: requests per second accepted; the excess gets 429 + ``Retry-After: 1``.
            mix: random faults (:class:`FaultMix`), reproducible with its seed.
            latency: see :class:`Fault`.
            hang: see :class:`Fault`.
            retry_after: see :class:`Fault`.
            reset: see :class:`Fault`.
            truncate: see :class:`Fault`.
            drip: see :class:`Fault`.
            drip_chunk: see :class:`Fault`.
            close: see :class:`Fault`.
            malformed_json: see :class:`Fault`.
            body: see :class:`Fault`.
            body_size: see :class:`Fault`.
            headers: see :class:`Fault`.

        Returns:
            the installed :class:`Route`.

        Raises:
            ValueError: on an invalid value, or ``status`` together with ``statuses``.
        """
        if status is not None and statuses is not None:
            raise ValueError("ChaosServer.route: give status or statuses, not both")
        fault = Fault(
            status=200 if status is None else status,
            latency=latency,
            hang=hang,
            retry_after=retry_after,
            reset=reset,
            truncate=truncate,
            drip=drip,
            drip_chunk=drip_chunk,
            close=close,
            malformed_json=malformed_json,
            body=body,
            body_size=body_size,
            headers=headers or {},
        )
        route = Route(
            path=path,
            fault=fault,
            statuses=tuple(statuses or ()),
            steps=tuple(steps or ()),
            times=times,
            rate_limit=rate_limit,
            mix=mix,
        )
        return self.add_route(route)

    def add_route(self, route: Route) -> Route:
        """Install a prepared :class:`Route` (replacing the one for its path)."""
        self._ledger.add_route(route)
        return route

    def reset(self) -> None:
        """Forget every route, count and record (the server keeps running)."""
        self._ledger.reset()

    # -- accounting --------------------------------------------------------

    def count(self, path: str | None = None) -> int:
        """How many requests arrived (counted when their head was read).

        Args:
            path: a path (every query string counts), a path with a query
                string (that exact target only), or ``None`` for all requests.
        """
        return self._ledger.count(path)

    @property
    def connections_opened(self) -> int:
        """How many TCP connections the server has accepted (since start or :meth:`reset`)."""
        return self._ledger.connections_opened

    def requests(self, path: str | None = None) -> list[RecordedRequest]:
        """The recorded requests, oldest first.

        Only requests whose body arrived in full are recorded.

        Args:
            path: filter as in :meth:`count`; ``None`` returns all.
        """
        return self._ledger.requests(path)

    @property
    def uploads_checked(self) -> int:
        """How many uploads were checked (requests carrying :func:`upload_headers`)."""
        return self._ledger.uploads_checked

    def upload_mismatches(self) -> list[UploadMismatch]:
        """The uploads whose body was not what they declared (the latest 1,000), oldest first."""
        return self._ledger.upload_mismatches()[1]

    def duplicates(self) -> dict[str, int]:
        """``X-Chaos-Once`` ids that arrived more than once, with how often each arrived.

        An id is counted when the request head is read, so a request sent
        again after the server saw its head counts even if its body never came.
        """
        return self._ledger.duplicates()

    def stats(self) -> dict[str, Any]:
        """A JSON-serialisable summary of what the server saw.

        Keys: ``requests``, ``connections_opened``, ``by_path``,
        ``uploads_checked``, ``upload_mismatches`` (the count),
        ``mismatch_examples`` (up to 10, as :meth:`UploadMismatch.as_dict`),
        ``duplicates`` (how many once-only ids arrived more than once) and
        ``duplicate_examples`` (up to 10 ids with their counts).
        """
        ledger = self._ledger
        mismatch_count, mismatches = ledger.upload_mismatches()
        duplicates = ledger.duplicates()
        return {
            "requests": ledger.count(None),
            "connections_opened": ledger.connections_opened,
            "by_path": ledger.by_path(),
            "uploads_checked": ledger.uploads_checked,
            "upload_mismatches": mismatch_count,
            "mismatch_examples": [m.as_dict() for m in mismatches[:10]],
            "duplicates": len(duplicates),
            "duplicate_examples": dict(list(duplicates.items())[:10]),
        }

    def __repr__(self) -> str:
        where = self.url if self._server.port is not None else "stopped"
        ledger = self._ledger
        return f"ChaosServer({where}, routes={ledger.route_count}, requests={ledger.total})"

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

This module is the server itself; its parts live in private modules:
``_faults`` (:class:`Fault`, :class:`FaultMix`, :class:`Route` and how a
route answers), ``_records`` (what was received), ``_ledger`` (counts and
records behind one lock), ``_http`` (request parsing, raw answers) and
``_respond`` (a fault written to the wire).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Final

from ..clock import SYSTEM_CLOCK
from ._faults import Body, Fault, FaultMix, ResetMode, RetryAfter, Route
from ._http import _HEAD_LIMIT, _BadRequest, _parse_head, _read_body, _simple_response
from ._ledger import _Ledger
from ._records import RecordedHeaders, RecordedRequest
from ._respond import _respond

__all__ = [
    "ChaosServer",
    "Fault",
    "FaultMix",
    "RecordedHeaders",
    "RecordedRequest",
    "ResetMode",
    "Route",
]

logger = logging.getLogger(__name__)

_STOP_JOIN_TIMEOUT: Final = 5.0

# The classes live in private modules but are documented, imported and pickled
# from here, as they were before the split.
for _cls in (Fault, FaultMix, RecordedHeaders, RecordedRequest, Route):
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
        self._requested_port = port
        self._port: int | None = None
        self._ledger = _Ledger(max_records)  # routes, counts and records, behind one lock
        self._lifecycle = threading.Lock()  # serialises start() / stop()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connections: dict[asyncio.StreamWriter, asyncio.Task[Any]] = {}

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> ChaosServer:
        """Bind and start serving in a background thread; a no-op when running.

        Returns:
            the server itself, for chaining.

        Raises:
            OSError: when the address cannot be bound.
            RuntimeError: when the server thread does not come up within 10 s.
        """
        with self._lifecycle:
            if self._thread is not None:
                return self
            ready = threading.Event()
            failure: list[BaseException] = []
            thread = threading.Thread(
                target=self._run,
                args=(ready, failure),
                name=f"httpx-resilience-chaos-{id(self):x}",
                daemon=True,
            )
            thread.start()
            if not ready.wait(timeout=10.0):
                raise RuntimeError("ChaosServer: the server thread did not start within 10 s")
            if failure:
                thread.join(1.0)
                raise failure[0]
            self._thread = thread
        return self

    def stop(self, timeout: float = _STOP_JOIN_TIMEOUT) -> None:
        """Close every connection (hung ones included) and join the thread.

        Idempotent; returns after at most about ``timeout`` seconds even if
        the thread does not finish (it is a daemon and cannot block exit).

        Args:
            timeout: how long to wait for the server thread.
        """
        with self._lifecycle:
            thread, loop = self._thread, self._loop
            if thread is None:
                return
            self._thread = None
            if loop is not None:
                with contextlib.suppress(RuntimeError):  # loop already closed
                    loop.call_soon_threadsafe(loop.stop)
            if thread is not threading.current_thread():
                thread.join(timeout)
            if thread.is_alive():
                logger.warning("ChaosServer: the server thread did not stop within %.1f s", timeout)
            self._port = None

    def serve_forever(self) -> None:
        """Start (if needed) and block until :meth:`stop` is called or Ctrl-C."""
        thread = self.start()._thread
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
        return self._thread is not None

    @property
    def port(self) -> int:
        """The bound port.

        Raises:
            RuntimeError: when the server is not running.
        """
        if self._port is None:
            raise RuntimeError(
                "ChaosServer is not running: call start() or use `with ChaosServer() as server:`"
            )
        return self._port

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
        malformed_json: bool = False,
        body: Body | None = None,
        body_size: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Route:
        """Program what ``path`` answers; replaces any earlier route and its count.

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

    def __repr__(self) -> str:
        where = self.url if self._port is not None else "stopped"
        ledger = self._ledger
        return f"ChaosServer({where}, routes={ledger.route_count}, requests={ledger.total})"

    # -- server thread -----------------------------------------------------

    def _run(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        try:
            server = loop.run_until_complete(
                asyncio.start_server(
                    self._on_connection,
                    self.host,
                    self._requested_port,
                    limit=_HEAD_LIMIT,
                    backlog=1024,
                )
            )
        except BaseException as exc:  # reported to start() in the caller's thread
            failure.append(exc)
            loop.close()
            ready.set()
            return
        self._port = int(server.sockets[0].getsockname()[1])
        self._loop = loop
        ready.set()
        try:
            loop.run_forever()
        finally:
            try:
                loop.run_until_complete(self._shutdown(server))
            finally:
                self._loop = None
                loop.close()

    async def _shutdown(self, server: asyncio.AbstractServer) -> None:
        server.close()
        tasks = list(self._connections.values())
        for writer, task in list(self._connections.items()):
            writer.transport.abort()
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), timeout=1.0)
        leftovers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in leftovers:
            task.cancel()
        if leftovers:
            await asyncio.wait(leftovers, timeout=1.0)

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[writer] = task
        serial = self._ledger.open_connection()
        try:
            await self._serve(reader, writer, serial)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client went away or sent garbage: nothing left to answer
        except _BadRequest as exc:
            with contextlib.suppress(ConnectionError):
                writer.write(_simple_response(400, str(exc)))
        except asyncio.CancelledError:
            # stop() cancelled us. End normally: asyncio's own done-callback for
            # start_server handlers calls task.exception(), which on some 3.11
            # releases logs a spurious error for a cancelled task.
            pass
        except Exception:  # pragma: no cover - a bug in the server itself
            logger.exception("ChaosServer: connection handler failed")
        finally:
            self._connections.pop(writer, None)
            writer.close()

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, serial: int
    ) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return  # closed between requests: the normal end of keep-alive
            except asyncio.LimitOverrunError:
                writer.write(_simple_response(431, "request head too large"))
                return
            at = SYSTEM_CLOCK.monotonic()
            method, target, version, raw_headers = _parse_head(head)
            headers = RecordedHeaders(raw_headers)
            path, _, query = target.partition("?")
            fault, n = self._ledger.admit(path, query, target, at)
            body = await _read_body(reader, writer, headers)
            request = RecordedRequest(method, path, query, headers, body, at, serial)
            self._ledger.record(request)
            connection = headers.get("connection", "").lower()
            keep_alive = "close" not in connection and (
                version == "HTTP/1.1" or "keep-alive" in connection
            )
            keep_alive = await _respond(reader, writer, request, fault, n, keep_alive)
            if not keep_alive:
                return

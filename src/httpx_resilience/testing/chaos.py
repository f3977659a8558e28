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
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from email.utils import format_datetime, formatdate
from http import HTTPStatus
from types import MappingProxyType, TracebackType
from typing import Any, Final, Literal, TypeAlias
from urllib.parse import parse_qsl

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

ResetMode = Literal["before_headers", "after_headers"]
"""Where a connection is reset: before anything is sent, or after the response head."""

RetryAfter: TypeAlias = str | int | float | datetime
Body: TypeAlias = bytes | str | Mapping[str, Any] | Sequence[Any]

_RESET_MODES: Final = ("before_headers", "after_headers")
_REASONS: Final = {s.value: s.phrase for s in HTTPStatus}
_AFTER_HEADERS_PAUSE: Final = 0.02  # lets the client read the head before the RST lands
_HEAD_LIMIT: Final = 256 * 1024
_STOP_JOIN_TIMEOUT: Final = 5.0
_SO_LINGER_RST: Final = struct.pack("ii", 1, 0)


def _format_retry_after(value: RetryAfter) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("retry_after: a datetime must be timezone-aware")
        return format_datetime(value.astimezone(timezone.utc), usegmt=True)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"retry_after: expected str, number or datetime, got {value!r}")
    return str(int(value)) if float(value).is_integer() else str(value)


# --------------------------------------------------------------------------- #
# Programming: what a route does                                              #
# --------------------------------------------------------------------------- #


@dataclass(frozen=True, slots=True, kw_only=True)
class Fault:
    """How the server answers one request.

    The default is a healthy ``200`` with a small JSON body. Faults apply in
    this order: ``latency``, then ``hang`` / ``reset`` / ``truncate`` /
    ``drip``; at most one of the last four makes sense at a time.

    Args:
        status: the response status code.
        latency: seconds to wait before the response head is sent.
        hang: never answer; the connection stays open until the client goes
            away or the server stops.
        retry_after: a ``Retry-After`` value added to non-2xx responses: a
            string is sent as is (delta-seconds or an HTTP-date), a number as
            delta-seconds, a timezone-aware :class:`~datetime.datetime` as an
            HTTP-date.
        reset: ``"before_headers"`` closes the TCP connection with RST
            (``SO_LINGER`` 0) without sending anything; ``"after_headers"``
            sends the status line and headers (with a ``Content-Length``), then
            resets.
        truncate: send a ``Content-Length`` larger than the body actually
            sent, then close the connection.
        drip: seconds to wait before each ``drip_chunk``-byte piece of the
            body (the head is sent at once). ``0`` disables dripping.
        drip_chunk: the size of each dripped piece in bytes.
        malformed_json: answer ``Content-Type: application/json`` with a body
            that is not valid JSON.
        body: the response body: bytes (``application/octet-stream``), str
            (``text/plain``) or a JSON-serialisable mapping/sequence
            (``application/json``). ``None`` means the default JSON body.
        body_size: answer a JSON body of exactly this many bytes (plain bytes
            when it is below 11), for large-body tests.
        headers: extra response headers; they override the server's own.

    Raises:
        ValueError: on an impossible combination or value.
    """

    status: int = 200
    latency: float = 0.0
    hang: bool = False
    retry_after: RetryAfter | None = None
    reset: ResetMode | None = None
    truncate: bool = False
    drip: float = 0.0
    drip_chunk: int = 16
    malformed_json: bool = False
    body: Body | None = None
    body_size: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 100 <= self.status <= 599:
            raise ValueError(f"Fault.status must be within 100..599, got {self.status!r}")
        if self.latency < 0 or self.drip < 0:
            raise ValueError("Fault.latency and Fault.drip must be >= 0 seconds")
        if self.drip_chunk < 1:
            raise ValueError(f"Fault.drip_chunk must be >= 1 byte, got {self.drip_chunk!r}")
        if self.reset is not None and self.reset not in _RESET_MODES:
            raise ValueError(
                f"Fault.reset must be one of {_RESET_MODES} or None, got {self.reset!r}"
            )
        if self.body_size is not None and self.body_size < 0:
            raise ValueError(f"Fault.body_size must be >= 0, got {self.body_size!r}")
        if self.body is not None and self.body_size is not None:
            raise ValueError("Fault: give either body or body_size, not both")
        if self.retry_after is not None:
            _format_retry_after(self.retry_after)  # fail now, not inside the server thread
        for name, value in self.headers.items():
            if any(c in f"{name}{value}" for c in "\r\n") or not name:
                raise ValueError(f"Fault.headers: invalid header {name!r}: {value!r}")
        object.__setattr__(self, "headers", MappingProxyType(dict(self.headers)))

    def healthy(self) -> Fault:
        """This fault's content (body, headers) with every fault removed: a plain 200."""
        return Fault(body=self.body, body_size=self.body_size, headers=self.headers)


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultMix:
    """Random faults in fixed proportions, reproducible with a ``seed``.

    Each request draws one outcome; the probabilities must add up to at most
    1, and the rest is the route's normal answer. With the same seed and the
    same request order, the same requests fail.

    Args:
        error_500: share of ``500 Internal Server Error``.
        error_502: share of ``502 Bad Gateway``.
        error_503: share of ``503 Service Unavailable`` (with ``retry_after``).
        reset: share of connections reset before any byte is sent.
        hang: share of requests that never get an answer.
        slow: share of healthy but slow answers (``slow_latency`` seconds).
        slow_latency: the delay of a slow answer.
        rate_limited: share of ``429 Too Many Requests`` (with ``Retry-After``,
            ``retry_after`` or 1 second).
        retry_after: a ``Retry-After`` value for the 503 and 429 answers.
        seed: seeds the random generator; ``None`` draws differently each run.

    Raises:
        ValueError: when a share is outside 0..1 or the shares exceed 1.
    """

    error_500: float = 0.0
    error_502: float = 0.0
    error_503: float = 0.0
    reset: float = 0.0
    hang: float = 0.0
    slow: float = 0.0
    slow_latency: float = 0.5
    rate_limited: float = 0.0
    retry_after: RetryAfter | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        shares = self._shares()
        if any(not 0.0 <= share <= 1.0 for share in shares):
            raise ValueError(f"FaultMix: every share must be within 0..1, got {shares}")
        if sum(shares) > 1.0 + 1e-9:
            raise ValueError(f"FaultMix: the shares add up to {sum(shares):.3f} > 1")
        if self.slow_latency < 0:
            raise ValueError("FaultMix.slow_latency must be >= 0 seconds")

    def _shares(self) -> tuple[float, ...]:
        return (
            self.error_500,
            self.error_502,
            self.error_503,
            self.reset,
            self.hang,
            self.slow,
            self.rate_limited,
        )

    def pick(self, rng: random.Random) -> Fault | None:
        """Draw the fault for one request, or ``None`` for the route's normal answer.

        Args:
            rng: the random generator (one per route, seeded with ``seed``).
        """
        draw = rng.random()
        outcomes: tuple[Fault, ...] = (
            Fault(status=500),
            Fault(status=502),
            Fault(status=503, retry_after=self.retry_after),
            Fault(reset="before_headers"),
            Fault(hang=True),
            Fault(latency=self.slow_latency),
            Fault(status=429, retry_after=1 if self.retry_after is None else self.retry_after),
        )
        edge = 0.0
        for share, outcome in zip(self._shares(), outcomes, strict=True):
            edge += share
            if draw < edge:
                return outcome
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """What the server does for one path (see :meth:`ChaosServer.route`).

    For the n-th request to the route (counting from 1), the answer is, in
    order of precedence: a 429 if ``rate_limit`` is exceeded; a healthy 200
    if ``times`` is set and ``n > times``; ``steps[n-1]`` (the last step
    repeats); ``fault`` with ``statuses[n-1]`` as status (the last repeats),
    unless ``mix`` draws a fault.

    Args:
        path: the request path, matched exactly (the query string is ignored).
        fault: the base answer.
        statuses: a status sequence; overrides ``fault.status``.
        steps: one :class:`Fault` per request; overrides ``fault`` and ``statuses``.
        times: apply the faults to the first ``times`` requests only.
        rate_limit: requests per second the route accepts; above it, answer
            429 with ``Retry-After: 1`` (rejected requests do not use the quota).
        mix: random faults drawn per request.
    """

    path: str
    fault: Fault = Fault()
    statuses: tuple[int, ...] = ()
    steps: tuple[Fault, ...] = ()
    times: int | None = None
    rate_limit: int | None = None
    mix: FaultMix | None = None

    def __post_init__(self) -> None:
        if not self.path.startswith("/"):
            raise ValueError(f"Route.path must start with '/', got {self.path!r}")
        for status in self.statuses:
            if not 100 <= status <= 599:
                raise ValueError(f"Route.statuses: {status!r} is not a status code")
        if self.times is not None and self.times < 0:
            raise ValueError(f"Route.times must be >= 0, got {self.times!r}")
        if self.rate_limit is not None and self.rate_limit < 1:
            raise ValueError(f"Route.rate_limit must be >= 1 per second, got {self.rate_limit!r}")


_DEFAULT_ROUTE: Final = Route(path="/")
_RATE_LIMITED: Final = Fault(status=429, retry_after=1, body={"ok": False, "error": "rate limited"})


# --------------------------------------------------------------------------- #
# Accounting: what the server saw                                             #
# --------------------------------------------------------------------------- #


class RecordedHeaders(Mapping[str, str]):
    """Read-only request headers with case-insensitive lookup.

    Iteration yields lower-cased names; a header sent several times is joined
    with ``", "`` (use :meth:`get_list` for the separate values). Compares
    equal to a ``dict`` with lower-cased names.

    Args:
        raw: the ``(name, value)`` pairs as received.
    """

    __slots__ = ("_map", "raw")

    def __init__(self, raw: Iterable[tuple[str, str]] = ()) -> None:
        self.raw: tuple[tuple[str, str], ...] = tuple(raw)
        merged: dict[str, str] = {}
        for name, value in self.raw:
            key = name.lower()
            merged[key] = f"{merged[key]}, {value}" if key in merged else value
        self._map = merged

    def __getitem__(self, key: str) -> str:
        return self._map[key.lower()]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._map

    def __iter__(self) -> Iterator[str]:
        return iter(self._map)

    def __len__(self) -> int:
        return len(self._map)

    def get_list(self, key: str) -> list[str]:
        """Every value sent for ``key``, in order (empty when absent)."""
        wanted = key.lower()
        return [value for name, value in self.raw if name.lower() == wanted]

    def __repr__(self) -> str:
        return f"RecordedHeaders({self._map!r})"


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the server received it.

    Args:
        method: the request method, e.g. ``"POST"``.
        path: the path without the query string.
        query: the raw query string (``""`` when none).
        headers: the request headers (case-insensitive lookup).
        body: the request body, de-chunked.
        at: :func:`time.monotonic` when the request head was read; compare two
            records to measure the client's backoff.
        connection: the serial number (from 1) of the TCP connection it came
            on; equal numbers prove keep-alive reuse.
    """

    method: str
    path: str
    query: str
    headers: RecordedHeaders
    body: bytes
    at: float
    connection: int = 0

    @property
    def target(self) -> str:
        """The path with its query string, as sent on the request line."""
        return f"{self.path}?{self.query}" if self.query else self.path

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (undecodable bytes replaced)."""
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body parsed as JSON.

        Raises:
            ValueError: when the body is not JSON.
        """
        return json.loads(self.body)


@dataclass(slots=True)
class _RouteState:
    """Per-route runtime state (the policies above hold none)."""

    n: int = 0
    rng: random.Random | None = None
    window: deque[float] = field(default_factory=deque)


def _resolve(route: Route, state: _RouteState, now: float) -> Fault:
    """Decide the answer to the ``state.n``-th request of ``route`` (pure but for ``state``)."""
    if route.rate_limit is not None:
        window = state.window
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) >= route.rate_limit:
            return _RATE_LIMITED
        window.append(now)
    n = state.n
    if route.times is not None and n > route.times:
        return route.fault.healthy()
    if route.steps:
        return route.steps[min(n, len(route.steps)) - 1]
    fault = route.fault
    if route.statuses:
        fault = replace(fault, status=route.statuses[min(n, len(route.statuses)) - 1])
    if route.mix is not None and state.rng is not None:
        drawn = route.mix.pick(state.rng)
        if drawn is not None:
            return drawn
    return fault


# --------------------------------------------------------------------------- #
# Query-string faults                                                         #
# --------------------------------------------------------------------------- #

_QUERY_KEYS: Final = frozenset(
    {
        "status",
        "latency",
        "hang",
        "retry_after",
        "retry_after_date",
        "rate_limit",
        "reset",
        "truncate",
        "drip",
        "drip_chunk",
        "malformed_json",
        "body",
        "body_size",
        "header",
        "times",
    }
)
_TRUE: Final = frozenset({"", "1", "true", "yes", "on"})


def _route_from_query(path: str, query: str) -> Route | None:
    """The route a query string asks for, or ``None`` when it names no fault.

    Raises:
        ValueError: on an unparsable value (the server answers 400 with it).
    """
    params = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k in _QUERY_KEYS]
    if not params:
        return None
    fault: dict[str, Any] = {}
    extra_headers: dict[str, str] = {}
    statuses: tuple[int, ...] = ()
    times: int | None = None
    rate_limit: int | None = None
    for key, value in params:
        try:
            if key == "status":
                statuses = tuple(int(s) for s in value.split(",") if s.strip())
            elif key in ("latency", "drip"):
                fault[key] = float(value)
            elif key in ("hang", "truncate", "malformed_json"):
                fault[key] = value.lower() in _TRUE
            elif key == "retry_after":
                fault["retry_after"] = value
            elif key == "retry_after_date":
                fault["retry_after"] = formatdate(time.time() + float(value), usegmt=True)
            elif key == "reset":
                fault["reset"] = "before_headers" if value.lower() in _TRUE else value
            elif key in ("drip_chunk", "body_size"):
                fault[key] = int(value)
            elif key == "body":
                fault["body"] = value
            elif key == "header":
                name, sep, header_value = value.partition(":")
                if not sep:
                    raise ValueError("expected Name:Value")
                extra_headers[name.strip()] = header_value.strip()
            elif key == "times":
                times = int(value)
            else:  # rate_limit
                rate_limit = int(value)
        except ValueError as exc:
            raise ValueError(f"chaos query parameter {key}={value!r}: {exc}") from exc
    if extra_headers:
        fault["headers"] = extra_headers
    return Route(
        path=path,
        fault=Fault(**fault),
        statuses=statuses,
        times=times,
        rate_limit=rate_limit,
    )


# --------------------------------------------------------------------------- #
# Response bodies                                                             #
# --------------------------------------------------------------------------- #


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _body_of(fault: Fault, request: RecordedRequest, n: int, status: int) -> tuple[bytes, str]:
    """The body and content type to answer ``request`` with."""
    path = request.path
    if fault.malformed_json:
        return (
            f'{{"ok": true, "path": {json.dumps(path)}, "n": {n}, "items": [1, 2,'.encode(),
            "application/json",
        )
    body = fault.body
    if isinstance(body, bytes):
        return body, "application/octet-stream"
    if isinstance(body, str):
        return body.encode(), "text/plain; charset=utf-8"
    if body is not None:
        return _json(body), "application/json"
    if fault.body_size is not None:
        size = fault.body_size
        if size < 11:
            return b"x" * size, "application/octet-stream"
        return b'{"data":"' + b"x" * (size - 11) + b'"}', "application/json"
    if path == "/echo" or path.startswith("/echo/"):
        return (
            _json(
                {
                    "method": request.method,
                    "path": path,
                    "query": request.query,
                    "headers": dict(request.headers),
                    "body": request.text,
                    "n": n,
                }
            ),
            "application/json",
        )
    payload: dict[str, Any] = {"ok": 200 <= status < 300, "path": path, "n": n}
    payload["method"] = request.method
    if status >= 300:
        payload["status"] = status
        payload["error"] = _REASONS.get(status, "Unknown")
    return _json(payload), "application/json"


# --------------------------------------------------------------------------- #
# The server                                                                  #
# --------------------------------------------------------------------------- #


class _BadRequest(Exception):
    """The request cannot be parsed; answer 400 and close."""


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
        self._lock = threading.Lock()  # guards routes, states, counts and records
        self._lifecycle = threading.Lock()  # serialises start() / stop()
        self._routes: dict[str, Route] = {}
        self._query_routes: dict[str, Route | None] = {}
        self._states: dict[str, _RouteState] = {}
        self._total = 0
        self._by_path: dict[str, int] = {}
        self._by_target: dict[str, int] = {}
        self._records: deque[RecordedRequest] = deque(maxlen=max_records)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connections: dict[asyncio.StreamWriter, asyncio.Task[Any]] = {}
        self._connections_opened = 0

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
        with self._lock:
            self._routes[route.path] = route
            self._states.pop(route.path, None)
        return route

    def reset(self) -> None:
        """Forget every route, count and record (the server keeps running)."""
        with self._lock:
            self._routes.clear()
            self._query_routes.clear()
            self._states.clear()
            self._total = 0
            self._by_path.clear()
            self._by_target.clear()
            self._records.clear()
            self._connections_opened = 0

    # -- accounting --------------------------------------------------------

    def count(self, path: str | None = None) -> int:
        """How many requests arrived (counted when their head was read).

        Args:
            path: a path (every query string counts), a path with a query
                string (that exact target only), or ``None`` for all requests.
        """
        with self._lock:
            if path is None:
                return self._total
            if "?" in path:
                return self._by_target.get(path, 0)
            return self._by_path.get(path, 0)

    @property
    def connections_opened(self) -> int:
        """How many TCP connections the server has accepted (since start or :meth:`reset`)."""
        with self._lock:
            return self._connections_opened

    def requests(self, path: str | None = None) -> list[RecordedRequest]:
        """The recorded requests, oldest first.

        Only requests whose body arrived in full are recorded.

        Args:
            path: filter as in :meth:`count`; ``None`` returns all.
        """
        with self._lock:
            records = list(self._records)
        if path is None:
            return records
        if "?" in path:
            return [r for r in records if r.target == path]
        return [r for r in records if r.path == path]

    def __repr__(self) -> str:
        where = self.url if self._port is not None else "stopped"
        return f"ChaosServer({where}, routes={len(self._routes)}, requests={self._total})"

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
        with self._lock:
            self._connections_opened += 1
            serial = self._connections_opened
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
            at = time.monotonic()
            method, target, version, raw_headers = _parse_head(head)
            headers = RecordedHeaders(raw_headers)
            path, _, query = target.partition("?")
            fault, n = self._admit(path, query, target, at)
            body = await _read_body(reader, writer, headers)
            request = RecordedRequest(method, path, query, headers, body, at, serial)
            with self._lock:
                self._records.append(request)
            connection = headers.get("connection", "").lower()
            keep_alive = "close" not in connection and (
                version == "HTTP/1.1" or "keep-alive" in connection
            )
            keep_alive = await self._respond(reader, writer, request, fault, n, keep_alive)
            if not keep_alive:
                return

    def _admit(self, path: str, query: str, target: str, now: float) -> tuple[Fault, int]:
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

    async def _respond(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        request: RecordedRequest,
        fault: Fault,
        n: int,
        keep_alive: bool,
    ) -> bool:
        """Answer one request with ``fault``; return whether the connection stays open."""
        if fault.latency > 0:
            await asyncio.sleep(fault.latency)
        if fault.hang:
            # Read (and drop) until the client closes; stop() cancels us otherwise.
            while await reader.read(65536):
                pass
            return False
        if fault.reset == "before_headers":
            _reset(writer)
            return False
        status = fault.status
        body, content_type = _body_of(fault, request, n, status)
        if status < 200 or status in (204, 304):
            body = b""  # these statuses never carry a body (RFC 9110 §6.4.1)
        declared = len(body)
        if fault.truncate:
            declared, body = max(declared, 16), body[: declared // 2]
        if fault.reset or fault.truncate:
            keep_alive = False
        lines = [
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}",
            f"content-type: {content_type}",
            f"content-length: {declared}",
            f"x-chaos-n: {n}",
        ]
        if fault.retry_after is not None and not 200 <= status < 300:
            lines.append(f"retry-after: {_format_retry_after(fault.retry_after)}")
        if fault.headers:
            overridden = {name.lower() for name in fault.headers}
            lines = [lines[0]] + [
                line for line in lines[1:] if line.partition(":")[0] not in overridden
            ]
            lines.extend(f"{name}: {value}" for name, value in fault.headers.items())
        if not keep_alive:
            lines.append("connection: close")
        elif request.headers.get("connection", "").lower() == "keep-alive":
            lines.append("connection: keep-alive")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if request.method == "HEAD":
            body = b""  # the head still announces the length a GET would get

        if fault.reset == "after_headers":
            writer.write(head)
            await writer.drain()
            await asyncio.sleep(_AFTER_HEADERS_PAUSE)
            _reset(writer)
            return False
        if fault.drip > 0 and body:
            writer.write(head)
            await writer.drain()
            for start in range(0, len(body), fault.drip_chunk):
                await asyncio.sleep(fault.drip)
                writer.write(body[start : start + fault.drip_chunk])
                await writer.drain()
        else:
            writer.write(head + body)
            await writer.drain()
        return keep_alive


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST: ``SO_LINGER`` 0 makes the kernel drop the connection at once."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _SO_LINGER_RST)
    writer.transport.abort()


def _simple_response(status: int, message: str) -> bytes:
    body = _json({"ok": False, "status": status, "error": message})
    return (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    ).encode("latin-1") + body


def _parse_head(head: bytes) -> tuple[str, str, str, list[tuple[str, str]]]:
    """Split a request head into method, target, version and header pairs.

    Raises:
        _BadRequest: when the request line or a header line is malformed.
    """
    lines = head.lstrip(b"\r\n").decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _BadRequest(f"malformed request line: {lines[0][:100]!r}")
    method, target, version = parts
    if target.startswith(("http://", "https://")):  # absolute-form, as sent to proxies
        target = "/" + target.split("/", 3)[3] if target.count("/") >= 3 else "/"
    raw: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise _BadRequest(f"malformed header line: {line[:100]!r}")
        raw.append((name, value.strip()))
    return method, target, version, raw


async def _read_body(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, headers: RecordedHeaders
) -> bytes:
    """Read the request body framed by ``Transfer-Encoding: chunked`` or ``Content-Length``.

    Raises:
        _BadRequest: on a malformed length or chunk size.
    """
    chunked = "chunked" in headers.get("transfer-encoding", "").lower()
    length_header = headers.get("content-length")
    if not chunked and not length_header:
        return b""
    if headers.get("expect", "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    if not chunked:
        try:
            length = int(str(length_header))
        except ValueError:
            raise _BadRequest(f"invalid Content-Length: {length_header!r}") from None
        if length < 0:
            raise _BadRequest(f"invalid Content-Length: {length_header!r}")
        return await reader.readexactly(length) if length else b""
    pieces: list[bytes] = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise _BadRequest(f"invalid chunk size line: {size_line[:40]!r}") from None
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":
                pass  # trailers are accepted and ignored
            return b"".join(pieces)
        pieces.append(await reader.readexactly(size))
        await reader.readexactly(2)

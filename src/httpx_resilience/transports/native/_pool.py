"""The connection pool of :class:`~httpx_resilience.transports.NativeTransport`.

Rules, as httpcore's pool keeps them:

- at most ``max_connections`` connections are open (idle, in use or being
  opened); a caller that finds none free waits in FIFO order, at most the pool
  timeout (``httpx.PoolTimeout``);
- a freed connection goes straight to the first waiter: the connection itself
  when the waiter wants the same origin, otherwise its slot (the connection is
  closed and the waiter opens its own), so nobody who arrives later jumps the
  queue;
- idle connections are kept per origin, the most recently used first, at most
  ``max_keepalive_connections`` of them, and are not reused after
  ``keepalive_expiry`` seconds idle (a timer closes them then); one the server
  closed while idle leaves the pool at once, and one about to be reused is
  checked first (:meth:`~._connection.H1Connection.usable`): the server may
  have closed it since the event loop last looked;
- an origin's entry goes when it has neither an idle connection nor one in
  use, so a client calling many hosts does not keep one per host ever called;
- a server that closes its connections right after each response without
  saying so is learnt (:class:`~._closers.PromptClosers`), and its
  connections are then closed after their response instead of kept;
- when the pool is full of idle connections to other origins, the oldest of
  them is closed to make room.

Decisions only: opening a connection is the ``connect`` callable's job.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Final

import httpx

from ._closers import PromptClosers
from ._connection import H1Connection
from ._request import Origin

__all__ = ["ConnectionPool"]

# The expiry timer fires this long after the first idle connection expires, so
# that it finds it expired (timers may fire a clock tick early).
_SWEEP_SLACK: Final = 0.01
Connect = Callable[[Origin, "float | None", httpx.Request], Awaitable[H1Connection]]


class ConnectionPool:
    """Hands out :class:`H1Connection` objects per origin under the connection limits."""

    __slots__ = (
        "_all",
        "_closers",
        "_connect",
        "_expiry",
        "_idle",
        "_idle_count",
        "_loop",
        "_max",
        "_max_idle",
        "_open",
        "_sweep",
        "_waiters",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        connect: Connect,
        *,
        max_connections: int | None,
        max_keepalive_connections: int | None,
        keepalive_expiry: float | None,
    ) -> None:
        self._loop = loop
        self._connect = connect
        self._max = max_connections
        self._max_idle = max_keepalive_connections
        self._expiry = keepalive_expiry
        self._idle: dict[Origin, list[H1Connection]] = {}
        self._idle_count = 0
        self._open = 0  # counted against max_connections: idle, in use and connecting
        self._waiters: deque[tuple[Origin, asyncio.Future[H1Connection | None]]] = deque()
        self._all: set[H1Connection] = set()
        self._sweep: asyncio.TimerHandle | None = None  # closes expired idle connections
        self._closers = PromptClosers()  # servers that close every connection at once

    # -- taking a connection ------------------------------------------------------------

    async def acquire(
        self,
        origin: Origin,
        timeouts: dict[str, Any],
        request: httpx.Request,
        *,
        fresh: bool = False,
    ) -> H1Connection:
        """A connection to ``origin``: an idle one, a new one, or one freed while waiting.

        ``fresh=True`` takes no idle or handed-over connection: a new one is
        opened (in a slot of its own, or one freed while waiting).

        Raises:
            httpx.PoolTimeout: no connection became free within the pool timeout.
            httpx.ConnectError, httpx.ConnectTimeout: opening a connection failed.
        """
        if not fresh:
            stack = self._idle.get(origin)
            if stack:
                conn = self._pop_idle(origin, stack)
                if conn is not None:
                    return conn
        maximum = self._max
        if maximum is None or self._open < maximum:
            self._open += 1
        elif self._idle_count:
            self._evict_oldest()  # its slot becomes ours
        else:
            handed = await self._wait(origin, timeouts.get("pool"), request)
            if handed is not None:
                if not fresh and handed.usable():
                    return handed
                # The server closed it between the hand-over and now (or a new
                # one is wanted): its slot is ours, so open a connection in it.
                handed.close()
                self._all.discard(handed)
            # a slot was handed over: _open already counts it
        try:
            conn = await self._connect(origin, timeouts.get("connect"), request)
        except BaseException:
            self._free_slot()
            raise
        self._all.add(conn)
        return conn

    def _pop_idle(self, origin: Origin, stack: list[H1Connection]) -> H1Connection | None:
        expiry = self._expiry
        now = self._loop.time()
        conn: H1Connection | None = None
        while stack:
            conn = stack.pop()
            self._idle_count -= 1
            if expiry is None or now - conn.idle_since <= expiry:
                if conn.usable():
                    conn.idle_since = -1.0  # marks a reuse: see release()
                    break
                self._closers.closed(conn.origin, conn.idle_since, now)
            self._discard(conn)
            conn = None
        if conn is None:
            del self._idle[origin]  # emptied, and none of its connections is out
        # else the entry stays while its connection is in use: release() refills it
        return conn

    async def _wait(
        self, origin: Origin, timeout: float | None, request: httpx.Request
    ) -> H1Connection | None:
        fut: asyncio.Future[H1Connection | None] = self._loop.create_future()
        entry = (origin, fut)
        self._waiters.append(entry)
        timer = (
            self._loop.call_later(timeout, _expire, fut, timeout, self._max, request)
            if timeout is not None
            else None
        )
        try:
            return await fut
        except BaseException:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                # Handed a connection or a slot just as we gave up: pass it on.
                handed = fut.result()
                if handed is None:
                    self._free_slot()
                else:
                    self.release(handed, True)
            else:
                with contextlib.suppress(ValueError):  # removed when it was handed over
                    self._waiters.remove(entry)
            raise
        finally:
            if timer is not None:
                timer.cancel()

    # -- giving it back -----------------------------------------------------------------

    def release(self, conn: H1Connection, reusable: bool) -> None:
        """Return ``conn`` after its response; ``reusable=False`` closes it."""
        waiter = self._next_waiter()
        closers = self._closers
        if reusable and conn.idle_since < 0.0 and closers.watching():
            closers.reused(conn.origin)
        if reusable and closers.any_refused():
            reusable = not closers.refuses(conn.origin, self._loop.time())
        if reusable and not conn.closed:
            if waiter is not None:
                origin, fut = waiter
                if origin == conn.origin:
                    conn.idle_since = -1.0  # handed over: a reuse too
                    fut.set_result(conn)
                    return
                self._gone(conn, keep_slot=True)
                fut.set_result(None)
                return
            if self._max_idle is not None and self._idle_count >= self._max_idle:
                self._gone(conn)
                return
            now = conn.idle_since = self._loop.time()
            stack = self._idle.get(conn.origin)
            if stack is None:
                stack = self._idle[conn.origin] = []
            stack.append(conn)
            self._idle_count += 1
            expiry = self._expiry
            if expiry is not None:
                # The least recently used sit at the bottom: retire the expired ones
                # now rather than keep their sockets (and slots) until they are reached.
                while now - stack[0].idle_since > expiry:
                    self._idle_count -= 1
                    self._discard(stack.pop(0))
                if self._sweep is None:
                    self._sweep = self._loop.call_at(
                        now + expiry + _SWEEP_SLACK, self._retire_expired
                    )
            return
        if waiter is not None:
            self._gone(conn, keep_slot=True)
            waiter[1].set_result(None)
        else:
            self._gone(conn)

    def _gone(self, conn: H1Connection, *, keep_slot: bool = False) -> None:
        """``conn`` is not kept after its response: closed, and an entry it leaves empty dropped."""
        stack = self._idle.get(conn.origin)
        if stack is not None and not stack:
            del self._idle[conn.origin]
        self._discard(conn, keep_slot=keep_slot)

    def lost(self, conn: H1Connection) -> None:
        """``conn`` was closed by the peer; an idle one leaves the pool now."""
        stack = self._idle.get(conn.origin)
        if stack and conn in stack:
            stack.remove(conn)
            if not stack:
                del self._idle[conn.origin]
            self._idle_count -= 1
            self._discard(conn)
            self._closers.closed(conn.origin, conn.idle_since, self._loop.time())

    def _next_waiter(self) -> tuple[Origin, asyncio.Future[H1Connection | None]] | None:
        waiters = self._waiters
        while waiters:
            entry = waiters.popleft()
            if not entry[1].done():
                return entry
        return None

    def _discard(self, conn: H1Connection, *, keep_slot: bool = False) -> None:
        """Close ``conn``; its slot is freed (and offered to a waiter) unless kept."""
        conn.close()
        self._all.discard(conn)
        if not keep_slot:
            self._free_slot()

    def _free_slot(self) -> None:
        waiter = self._next_waiter()
        if waiter is not None:
            waiter[1].set_result(None)  # the slot passes to the waiter
        else:
            self._open -= 1

    def _evict_oldest(self) -> None:
        oldest: H1Connection | None = None
        for stack in self._idle.values():
            if stack and (oldest is None or stack[0].idle_since < oldest.idle_since):
                oldest = stack[0]
        assert oldest is not None
        stack = self._idle[oldest.origin]
        stack.remove(oldest)
        if not stack:
            del self._idle[oldest.origin]
        self._idle_count -= 1
        self._discard(oldest, keep_slot=True)

    def _retire_expired(self) -> None:
        """Close the idle connections past ``keepalive_expiry``; look again at the next expiry."""
        self._sweep = None
        expiry = self._expiry
        assert expiry is not None
        now = self._loop.time()
        idle = self._idle
        soonest: float | None = None
        for origin in list(idle):
            stack = idle[origin]
            while stack and now - stack[0].idle_since >= expiry:
                self._idle_count -= 1
                self._discard(stack.pop(0))
            if not stack:
                del idle[origin]
            elif soonest is None or stack[0].idle_since < soonest:
                soonest = stack[0].idle_since
        if soonest is not None:
            self._sweep = self._loop.call_at(soonest + expiry + _SWEEP_SLACK, self._retire_expired)

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def open_connections(self) -> int:
        """Connections counted against the limit (idle, in use and being opened)."""
        return self._open

    @property
    def idle_connections(self) -> int:
        """Connections kept alive, waiting for a request."""
        return self._idle_count

    @property
    def idle_origins(self) -> int:
        """Origins the pool keeps an entry for: those with idle connections.

        An origin's entry also stays while its last connection is in use (it
        goes back there); it goes when the origin has neither.
        """
        return len(self._idle)

    def close(self) -> None:
        """Close every connection; waiters fail with ``httpx.PoolTimeout``-free ``RuntimeError``."""
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for conn in list(self._all):
            conn.close()
        self._all.clear()
        self._idle.clear()
        self._idle_count = 0
        self._open = 0
        while self._waiters:
            _, fut = self._waiters.popleft()
            if not fut.done():
                fut.set_exception(
                    RuntimeError("The transport was closed while waiting for a connection")
                )


def _expire(
    fut: asyncio.Future[H1Connection | None],
    timeout: float,
    maximum: int | None,
    request: httpx.Request,
) -> None:
    if not fut.done():
        fut.set_exception(
            httpx.PoolTimeout(
                f"No connection became free within the pool timeout ({timeout:g} s; "
                f"max_connections={maximum})",
                request=request,
            )
        )

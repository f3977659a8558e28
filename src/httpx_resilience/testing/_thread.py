"""The chaos server's thread: an asyncio TCP server on its own event loop in a daemon thread.

:class:`_ServerThread` binds, hands every accepted connection to the handler
it was given, and on stop aborts the open connections (hung ones included)
and cancels what is left, so a stop returns within seconds whatever the
clients do. It knows nothing of HTTP: ``ChaosServer`` gives it
:func:`~httpx_resilience.testing._connection._serve_connection` as the handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["_Handler", "_ServerThread"]

logger = logging.getLogger("httpx_resilience.testing.chaos")  # ChaosServer's own logger

#: Serves one accepted connection until it ends.
_Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class _ServerThread:
    """A TCP server on ``host:port`` running ``handler`` per connection in a daemon thread.

    ``start`` and ``stop`` are thread-safe and idempotent.

    Args:
        host: the interface to bind to.
        port: the port; ``0`` picks a free one (see :attr:`port` once started).
        handler: serves one connection.
        name: the thread's name.
        limit: the stream readers' buffer limit (the longest request head).
    """

    def __init__(
        self, host: str, port: int, handler: _Handler, *, name: str, limit: int
    ) -> None:
        self._host = host
        self._requested_port = port
        self._handler = handler
        self._name = name
        self._limit = limit
        self._port: int | None = None
        self._lifecycle = threading.Lock()  # serialises start() / stop()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connections: dict[asyncio.StreamWriter, asyncio.Task[Any]] = {}

    @property
    def port(self) -> int | None:
        """The bound port while running, else ``None``."""
        return self._port

    @property
    def thread(self) -> threading.Thread | None:
        """The server thread while running, else ``None``."""
        return self._thread

    def start(self) -> None:
        """Bind and start serving; a no-op when running.

        Raises:
            OSError: when the address cannot be bound.
            RuntimeError: when the server thread does not come up within 10 s.
        """
        with self._lifecycle:
            if self._thread is not None:
                return
            ready = threading.Event()
            failure: list[BaseException] = []
            thread = threading.Thread(
                target=self._run, args=(ready, failure), name=self._name, daemon=True
            )
            thread.start()
            if not ready.wait(timeout=10.0):
                raise RuntimeError("ChaosServer: the server thread did not start within 10 s")
            if failure:
                thread.join(1.0)
                raise failure[0]
            self._thread = thread

    def stop(self, timeout: float) -> None:
        """Stop the loop (closing every connection) and join the thread for up to ``timeout``."""
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

    # -- in the server thread ----------------------------------------------

    def _run(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        try:
            server = loop.run_until_complete(
                asyncio.start_server(
                    self._on_connection,
                    self._host,
                    self._requested_port,
                    limit=self._limit,
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
        self._connections[writer] = task  # so that _shutdown can abort it
        try:
            await self._handler(reader, writer)
        finally:
            self._connections.pop(writer, None)

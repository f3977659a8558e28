"""The ``bench`` command's upstream: a minimal keep-alive HTTP/1.1 server in its own process.

It answers every request with the same small JSON body and does nothing
else, so the clients measured are the bottleneck, not the server (a Python
server doing more would cap every client at its own speed). It reads only
request heads: the bench sends GETs. Run it as
``python -m httpx_resilience.cli._bench_server``; it prints its port, serves
until its standard input closes, and so never outlives the bench.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

__all__ = ["MAX_HEAD", "serve"]

BODY = b'{"ok":true}'
RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
    b"content-length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY
)
MAX_HEAD = 16 * 1024
"""A peer whose unanswered bytes pass this is cut off (the buffer has a limit)."""


class _Answer(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buffer += data
        heads = self.buffer.count(b"\r\n\r\n")
        if heads:
            self.buffer = self.buffer[self.buffer.rfind(b"\r\n\r\n") + 4 :]
            self.transport.write(RESPONSE * heads)
        if len(self.buffer) > MAX_HEAD:
            self.transport.close()


async def serve() -> None:
    """Serve on a free loopback port until standard input reaches its end."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Answer, "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    print(port, flush=True)
    await loop.run_in_executor(None, sys.stdin.read)  # EOF: the bench has ended
    server.close()


if __name__ == "__main__":  # pragma: no cover - runs in the bench's child process
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())

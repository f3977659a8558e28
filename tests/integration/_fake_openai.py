"""A local fake of the OpenAI HTTP API for the SDK tests: its JSON bodies, and a gated stream.

Faults come from :class:`~httpx_resilience.testing.ChaosServer` (503s, 429
with ``Retry-After``, latency, resets), which also counts and records every
request; this module gives it the bodies the ``openai`` SDK parses:

- :func:`chat_completion` for ``POST /v1/chat/completions``;
- :func:`embeddings` for ``POST /v1/embeddings``;
- :func:`sse` for a streamed completion (``stream=True``): server-sent events.

:class:`GatedStreamServer` serves a streamed completion whose first event is
sent at once and the rest only once the test opens a gate, so a test can
prove, without timing anything, that events reach the caller as they arrive.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

__all__ = [
    "CHAT_PATH",
    "EMBEDDINGS_PATH",
    "GatedStreamServer",
    "chat_completion",
    "embeddings",
    "sse",
]

CHAT_PATH = "/v1/chat/completions"
EMBEDDINGS_PATH = "/v1/embeddings"


def chat_completion(content: str = "pong") -> dict[str, Any]:
    """The body of a finished chat completion whose answer is ``content``."""
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "fake-model",
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": content},
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }


def embeddings(vector: tuple[float, ...] = (0.25, 0.5, 0.75)) -> dict[str, Any]:
    """The body of an embeddings answer holding one ``vector``."""
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": list(vector)}],
        "model": "fake-embedding",
        "usage": {"prompt_tokens": 2, "total_tokens": 2},
    }


def _chunk(content: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "fake-model",
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}],
    }


def sse_event(content: str) -> str:
    """One server-sent event carrying a completion chunk with ``content``."""
    return f"data: {json.dumps(_chunk(content))}\n\n"


def sse(words: list[str]) -> str:
    """A streamed completion: one event per word, then ``[DONE]``."""
    return "".join(sse_event(word) for word in words) + "data: [DONE]\n\n"


class GatedStreamServer:
    """Answers every request with a streamed completion: the first event now, the rest at the gate.

    The response is chunked; after the first event the server waits for
    :meth:`open_gate` (or for the client to go away), then sends the other
    events and ``[DONE]``. Use ``async with`` inside the test's event loop.

    Args:
        words: the content of the events, in order (at least one).
    """

    def __init__(self, words: list[str]) -> None:
        self.words = words
        self.requests = 0
        self._gate = asyncio.Event()
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        """The base URL of the fake API, ``http://127.0.0.1:<port>/v1``."""
        assert self._server is not None, "GatedStreamServer is not started"
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1"

    def open_gate(self) -> None:
        """Let the server send the events after the first."""
        self._gate.set()

    async def __aenter__(self) -> GatedStreamServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._gate.set()
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.decode("latin-1").split("\r\n"):
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
            self.requests += 1
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                b"transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
            )
            writer.write(_frame(sse_event(self.words[0])))
            await writer.drain()
            await self._gate.wait()
            writer.write(_frame(sse(self.words[1:])) + b"0\r\n\r\n")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away (its attempt timed out): nothing to answer
        finally:
            writer.close()


def _frame(text: str) -> bytes:
    data = text.encode()
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"

"""Secrets never leave through a text: errors, their whole chain, log records, spans.

Real servers on loopback, every inner transport. Each test sends a credential
the way it goes wrong in practice (a token read from a file with its newline,
a server that echoes the credential back in a malformed head or a reason
phrase) and then reads *everything* a user could see: ``str()``, ``repr()`` and
the formatted traceback of the final exception with its ``__cause__`` /
``__context__`` chain, every captured log record (httpcore's DEBUG lines
included, with their ``extra`` fields), and every span attribute, event and
status description.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import AsyncIterator, Generator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from httpx_resilience import (
    AsyncHTTPClient,
    BearerAuth,
    ClientConfig,
    ConfigurationError,
    LoggingMiddleware,
    ResilientTransport,
)
from httpx_resilience.observe.logging import LoggingObserver
from httpx_resilience.observe.otel import TracingObserver
from httpx_resilience.testing import ChaosServer
from httpx_resilience.transports import make_transport

KINDS = ("httpx", "native", "aiohttp")
CONFIG = ClientConfig(
    timeout=2.0, retry_attempts=2, retry_backoff_factor=0.01, retry_max_delay=0.02,
    retry_jitter="none",
)
# Not JWT-shaped, never registered as a secret: only the header-error rules can hide it.
FILE_TOKEN = "tok_live_9f8e7d6c5b4a3210fedcba"
FILE_PREFIX = FILE_TOKEN[:12]
# Sent through BearerAuth (so known to the library) to a server that echoes it.
ECHOED_TOKEN = "echo-Hostile-0123456789abcdef"


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    """The inner transport under test."""
    return str(request.param)


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    """Finished spans, kept in memory."""
    return InMemorySpanExporter()


@pytest.fixture
def observers(exporter: InMemorySpanExporter) -> tuple[Any, ...]:
    """A logging observer and a tracing observer exporting to ``exporter``."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return LoggingObserver(), TracingObserver(provider)


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Generator[pytest.LogCaptureFixture, None, None]:
    """Every logger at DEBUG (httpx, httpcore, aiohttp and ours)."""
    caplog.set_level(logging.DEBUG)
    yield caplog


def everything(
    exc: BaseException | None, logs: pytest.LogCaptureFixture, exporter: InMemorySpanExporter
) -> str:
    """All the text a user can see of a failed request."""
    parts: list[str] = []
    seen: set[int] = set()
    todo = [exc] if exc is not None else []
    if exc is not None:
        parts += ["".join(traceback.format_exception(exc)), str(exc), repr(exc)]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        parts += [str(e), repr(e), repr(e.args), repr(getattr(e, "__notes__", None))]
        todo += [x for x in (e.__cause__, e.__context__, *e.args) if isinstance(x, BaseException)]
    for record in logs.records:
        parts += [record.getMessage(), repr(record.__dict__)]
        if record.exc_info and record.exc_info[1] is not None:
            parts.append("".join(traceback.format_exception(record.exc_info[1])))
    for span in exporter.get_finished_spans():
        parts += [span.name, repr(dict(span.attributes or {})), span.status.description or ""]
        parts += [f"{ev.name} {dict(ev.attributes or {})!r}" for ev in span.events]
    return "\n".join(parts)


class RawBearer(httpx.Auth):
    """A plain httpx.Auth that sends what it was given, unchecked (like many SDKs do)."""

    def __init__(self, value: str) -> None:
        self.value = value

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self.value
        yield request


# -- a token read from a file, with its newline ------------------------------------------------


async def test_bearer_auth_refuses_a_token_with_its_newline_without_showing_it() -> None:
    """BearerAuth(token + '\\n') is a clean ConfigurationError: the fix, never the token."""
    with pytest.raises(ConfigurationError) as info:
        BearerAuth(FILE_TOKEN + "\n")
    text = "".join(traceback.format_exception(info.value)) + repr(info.value)
    assert FILE_PREFIX not in text and "strip" in str(info.value)


async def test_illegal_header_value_through_resilient_transport(
    kind: str,
    chaos_server: ChaosServer,
    observers: tuple[Any, ...],
    logs: pytest.LogCaptureFixture,
    exporter: InMemorySpanExporter,
) -> None:
    """httpx.AsyncClient over ResilientTransport: the transport's refusal of 'Bearer tok\\n'
    (h11's 'Illegal header value b"..."') reaches no error text, log record or span."""
    transport = ResilientTransport(make_transport(kind), config=CONFIG, observers=observers)
    auth = RawBearer(f"Bearer {FILE_TOKEN}\n")
    async with httpx.AsyncClient(transport=transport, auth=auth) as client:
        with pytest.raises(Exception) as info:
            await client.get(chaos_server.url_for("/file-token"))
    assert isinstance(info.value, httpx.HTTPError | ValueError), repr(info.value)
    text = everything(info.value, logs, exporter)
    assert FILE_TOKEN not in text and FILE_PREFIX not in text
    assert chaos_server.count("/file-token") == 0  # nothing was sent


async def test_illegal_header_value_through_async_http_client(
    kind: str,
    chaos_server: ChaosServer,
    observers: tuple[Any, ...],
    logs: pytest.LogCaptureFixture,
    exporter: InMemorySpanExporter,
) -> None:
    """AsyncHTTPClient with a header value carrying the newline, and an httpx.Auth doing the
    same: the final error, its chain, the middleware's ERROR line and the spans stay clean."""
    client = AsyncHTTPClient(
        chaos_server.url, config=CONFIG, transport=kind, observers=observers,  # type: ignore[arg-type]
        middlewares=[LoggingMiddleware()],
    )
    value = f"Bearer {FILE_TOKEN}\n"
    failures: list[BaseException] = []
    async with client:
        with pytest.raises(Exception) as info:
            await client.get("/file-token", headers={"Authorization": value})
        failures.append(info.value)
    plain = httpx.AsyncClient(
        transport=ResilientTransport(make_transport(kind), config=CONFIG, observers=observers),
        auth=RawBearer(value),
    )
    async with plain:
        with pytest.raises(Exception) as info:
            await plain.get(chaos_server.url_for("/file-token"))
        failures.append(info.value)
    for exc in failures:
        text = everything(exc, logs, exporter)
        assert FILE_TOKEN not in text and FILE_PREFIX not in text
    assert any(r.levelno >= logging.ERROR for r in logs.records)  # the failure was logged
    assert chaos_server.count("/file-token") == 0


# -- a server that echoes the credential back -------------------------------------------------


@pytest.fixture
async def echo_server() -> AsyncIterator[str]:
    """A raw server that echoes the request's Authorization value in a broken response head:
    ``/line`` as a header line with no colon, ``/status`` in the status line, ``/reason`` in a
    503's reason phrase, ``/header`` in a header value after a control character."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            lines = head.split(b"\r\n")
            path = lines[0].split(b" ")[1].split(b"?")[0]
            auth = next(
                (ln.split(b":", 1)[1].strip() for ln in lines if ln.lower().startswith(b"authorization:")),
                b"none",
            )
            answers = {
                b"/line": b"HTTP/1.1 200 OK\r\n" + auth + b"\r\nContent-Length: 0\r\n\r\n",
                b"/status": b"HTTP/1.1 " + auth + b"\r\nContent-Length: 0\r\n\r\n",
                b"/reason": b"HTTP/1.1 503 " + auth + b"\r\nContent-Length: 0\r\n\r\n",
                b"/header": b"HTTP/1.1 502 Bad Gateway\r\nX-Echo: \x01" + auth
                + b"\r\nContent-Length: 0\r\n\r\n",
            }
            writer.write(answers.get(path, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("path", ["/line", "/status", "/reason", "/header"])
async def test_a_credential_echoed_in_a_broken_head_is_never_shown(
    kind: str,
    path: str,
    echo_server: str,
    observers: tuple[Any, ...],
    logs: pytest.LogCaptureFixture,
    exporter: InMemorySpanExporter,
) -> None:
    """A server that puts the Bearer token into its head (a header line, the status line, the
    reason phrase): parser errors quoting it, retry logs and the final error hide it."""
    client = AsyncHTTPClient(
        echo_server, config=CONFIG, transport=kind, observers=observers,  # type: ignore[arg-type]
        auth=BearerAuth(ECHOED_TOKEN), middlewares=[LoggingMiddleware()],
    )
    exc: BaseException | None = None
    async with client:
        try:
            response = await client.get(path)
        except Exception as caught:  # which error depends on the transport
            exc = caught
        else:
            assert response.status_code >= 400
            assert ECHOED_TOKEN not in repr(response)
    text = everything(exc, logs, exporter)
    assert ECHOED_TOKEN not in text and ECHOED_TOKEN[:12] not in text

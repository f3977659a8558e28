"""Whether a test has mocked httpx's HTTP stack, so our own transports step aside.

Mocking libraries patch httpx's stack, not ours: respx (its default
``"httpcore"`` mocker) replaces ``handle_async_request`` on httpcore's
connection pool and connection classes, pytest-httpx replaces it on
``httpx.AsyncHTTPTransport``. Tests written the usual way — ``respx.mock`` around
code that uses :class:`~httpx_resilience.AsyncHTTPClient` — would then make
real network calls whenever ``transport="auto"`` picked ``NativeTransport`` or
``AiohttpTransport``.

:func:`patched` compares those methods with the ones saved at import: two
attribute reads and two identity tests per request. When one has been replaced,
:class:`MockedSend` sends the request through a plain
``httpx.AsyncHTTPTransport`` instead, so the mock sees it exactly as it would
under plain httpx.
"""

from __future__ import annotations

from typing import Any, Final

import httpx

__all__ = ["MockedSend", "patched"]

_HTTPX_SEND: Final = httpx.AsyncHTTPTransport.handle_async_request

try:  # httpcore comes with httpx; guard against an exotic install all the same
    import httpcore as _httpcore

    _POOL: Any = _httpcore.AsyncConnectionPool
except ImportError:  # pragma: no cover - httpx depends on httpcore
    _POOL = None
_POOL_SEND: Final = getattr(_POOL, "handle_async_request", None)


def patched() -> bool:
    """Whether respx, pytest-httpx or a ``mock.patch`` has replaced httpx's sending."""
    return (
        httpx.AsyncHTTPTransport.handle_async_request is not _HTTPX_SEND
        or (_POOL is not None and _POOL.handle_async_request is not _POOL_SEND)
    )


class MockedSend:
    """A lazily made ``httpx.AsyncHTTPTransport`` that a patched stack intercepts.

    Args:
        verify: the owner's TLS verification setting (``True``, ``False`` or an
            ``ssl.SSLContext``), passed on so a mocked ``https`` URL is built alike.
    """

    __slots__ = ("_transport", "_verify")

    def __init__(self, verify: Any = True) -> None:
        self._verify = verify
        self._transport: httpx.AsyncHTTPTransport | None = None

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through httpx's own transport (where the mock sits)."""
        if self._transport is None:
            self._transport = httpx.AsyncHTTPTransport(verify=self._verify)
        return await self._transport.handle_async_request(request)

    async def aclose(self) -> None:
        """Close the httpx transport if one was made."""
        if self._transport is not None:
            transport, self._transport = self._transport, None
            await transport.aclose()


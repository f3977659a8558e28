"""One cancellation scope per attempt: :func:`asyncio.timeout` on 3.11+, anyio's before."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

__all__ = ["timeout_scope"]

if sys.version_info >= (3, 11):  # pragma: no cover - the branch depends on the interpreter
    import asyncio

    timeout_scope: Callable[[float], AbstractAsyncContextManager[object]] = asyncio.timeout
else:  # pragma: no cover
    import anyio

    @asynccontextmanager
    async def timeout_scope(seconds: float) -> AsyncIterator[None]:
        """A scope that raises :class:`TimeoutError` after ``seconds``."""
        with anyio.fail_after(seconds):
            yield

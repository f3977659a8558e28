"""``Fallback``: the response a request gets when it finally fails.

A fallback turns the pipeline's last word on a failed request (an open
breaker, retries that ran out, the total deadline, a limiter or bulkhead
refusal, the adaptive throttle's local rejection, a connection that never
came up) into a response of the caller's choosing: a fixed
``httpx.Response`` (a cached copy, an empty list, a "degraded" page), or a
callable that receives the request and the failure and returns one::

    async def from_cache(request: httpx.Request, error: Exception) -> httpx.Response:
        return httpx.Response(200, json=cache.get(str(request.url), []))

    transport = ResilientTransport(fallback=Fallback(from_cache))

**What qualifies.** By default, a failure of the transport or of the
resilience layer: any ``httpx.TransportError``, which every refusal of the
pipeline is (``CircuitBreakerOpenError``, ``RateLimiterTimeout``,
``BulkheadFullError``, ``ThrottledError``, ``RetryExhaustedError``,
``RequestTimeoutError``); and a final response the retry loop gave up on (a
retryable status such as 503 or 429 when no retry was left: the response
:class:`~httpx_resilience.ResilienceInfo` marks ``exhausted``). ``on=``
narrows or widens the exception classes, ``statuses=`` names the final
statuses that qualify whatever the retry policy said (an empty set: none).

**What never qualifies**, whatever ``on`` says: a programming error or a
request that cannot be sent as given (``InvalidRequestError``,
``ConfigurationError``, ``httpx.UnsupportedProtocol``,
``httpx.LocalProtocolError``), a body that cannot be replayed
(``RequestNotReplayableError``), and a cancellation. Those reach the caller
as they are: a fallback must not hide a bug.

The outcome records that the fallback served the request: its
``ResilienceInfo`` has ``fallback=True`` and ``fallback_error`` (the class
name of the failure); observers receive :class:`FallbackServed`; the
``httpx_resilience.fallback`` logger writes a WARNING line.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Collection

import httpx

from ..exceptions import (
    ConfigurationError,
    InvalidRequestError,
    RequestNotReplayableError,
    RetryExhaustedError,
)
from ..observe.events import FallbackServed

__all__ = [
    "DEFAULT_FALLBACK_ON",
    "Fallback",
    "FallbackHandler",
    "FallbackServed",
    "FallbackSource",
    "as_fallback",
]

#: A fallback callable: the request and the failure in, the response out
#: (a coroutine function, or a plain function returning the response).
FallbackHandler = Callable[
    [httpx.Request, Exception], Awaitable[httpx.Response] | httpx.Response
]

#: The exception classes a fallback serves by default.
DEFAULT_FALLBACK_ON: tuple[type[Exception], ...] = (httpx.TransportError,)

# Never served by a fallback: a request that cannot be sent as given, a bug.
_NEVER: tuple[type[BaseException], ...] = (
    InvalidRequestError,
    ConfigurationError,
    RequestNotReplayableError,
    httpx.UnsupportedProtocol,
    httpx.LocalProtocolError,
)
# Headers of a fixed response that describe its encoding on the wire, not its body.
_WIRE_HEADERS = frozenset({b"content-encoding", b"content-length", b"transfer-encoding"})


class Fallback:
    """A response (fixed, or made by a callable) for requests that finally fail.

    Args:
        response_or_handler: an ``httpx.Response`` whose body is in memory
            (a fresh copy is served each time), or a callable
            ``(request, error) -> httpx.Response`` (``async`` or not) that
            receives the failure. An :class:`~httpx_resilience.HTTPResponse`
            is accepted too, as its ``httpx.Response``.
        on: the exception classes served (default: ``httpx.TransportError``,
            every failure of the transport and refusal of the pipeline).
            The module docstring's programming errors are never served.
        statuses: final statuses served whatever the retry policy said;
            ``None`` (default): a response is served when the retry loop gave
            up on it (``ResilienceInfo.exhausted``); an empty set: never.

    Raises:
        ConfigurationError: ``response_or_handler`` is neither, a fixed
            response's body is not in memory, or ``on``/``statuses`` are malformed.
    """

    __slots__ = ("_content", "_handler", "_headers", "_status", "on", "statuses")

    def __init__(
        self,
        response_or_handler: httpx.Response | FallbackHandler,
        *,
        on: type[Exception] | tuple[type[Exception], ...] = DEFAULT_FALLBACK_ON,
        statuses: Collection[int] | None = None,
    ) -> None:
        value: object = response_or_handler
        to_httpx = getattr(value, "to_httpx", None)
        if not isinstance(value, httpx.Response) and callable(to_httpx):
            value = to_httpx()  # an HTTPResponse: its httpx.Response
        self._handler: FallbackHandler | None = None
        self._status = 0
        self._headers: list[tuple[bytes, bytes]] = []
        self._content = b""
        if isinstance(value, httpx.Response):
            try:
                self._content = value.content
            except httpx.ResponseNotRead as exc:
                raise ConfigurationError(
                    "fallback response's body is not in memory; build it with "
                    "content=, json= or text=, or read it first (response.read())",
                    field="fallback",
                ) from exc
            self._status = value.status_code
            self._headers = [
                (k, v) for k, v in value.headers.raw if k.lower() not in _WIRE_HEADERS
            ]
        elif callable(value):
            self._handler = value  # checked: a callable
        else:
            raise ConfigurationError(
                f"fallback must be an httpx.Response, a callable (request, error) -> "
                f"httpx.Response or a Fallback, got {type(value).__name__}",
                field="fallback",
            )
        classes = on if isinstance(on, tuple) else (on,)
        if not classes or not all(
            isinstance(c, type) and issubclass(c, BaseException) for c in classes
        ):
            raise ConfigurationError(
                f"Fallback(on=...) must be exception classes, got {on!r:.80}", field="on"
            )
        self.on: tuple[type[Exception], ...] = classes
        if statuses is not None:
            bad = [s for s in statuses if type(s) is not int or not 100 <= s <= 599]
            if bad or isinstance(statuses, (str, bytes)):
                raise ConfigurationError(
                    f"Fallback(statuses=...) must be HTTP statuses (100..599), got "
                    f"{statuses!r:.80}",
                    field="statuses",
                )
        self.statuses: frozenset[int] | None = (
            None if statuses is None else frozenset(statuses)
        )

    def handles(self, error: BaseException) -> bool:
        """Whether ``error`` is a failure this fallback serves (see the module docstring)."""
        if not isinstance(error, self.on) or isinstance(error, _NEVER):
            return False
        return not (
            isinstance(error, RetryExhaustedError) and isinstance(error.last_error, _NEVER)
        )

    def handles_response(self, status_code: int, exhausted: bool) -> bool:
        """Whether a final response with ``status_code`` is served by the fallback.

        ``exhausted``: the retry loop gave up on it (a retryable status, no retry left).
        """
        statuses = self.statuses
        return exhausted if statuses is None else status_code in statuses

    async def respond(self, request: httpx.Request, error: Exception) -> httpx.Response:
        """The fallback's response for ``request`` that failed with ``error``.

        Raises:
            ConfigurationError: the handler returned something that is not a response.
            Exception: whatever the handler raises, as it is (``error`` is its context).
        """
        handler = self._handler
        if handler is None:
            return httpx.Response(
                self._status, headers=self._headers, content=self._content, request=request
            )
        result: object = handler(request, error)
        if inspect.isawaitable(result):
            result = await result
        to_httpx = getattr(result, "to_httpx", None)
        if not isinstance(result, httpx.Response) and callable(to_httpx):
            result = to_httpx()
        if not isinstance(result, httpx.Response):
            raise ConfigurationError(
                f"fallback handler {getattr(handler, '__qualname__', handler)!r:.80} returned "
                f"{type(result).__name__}, not an httpx.Response",
                field="fallback",
            )
        return result

    def __repr__(self) -> str:
        what = (
            f"response {self._status}" if self._handler is None
            else getattr(self._handler, "__qualname__", repr(self._handler))
        )
        on = ", ".join(c.__name__ for c in self.on)
        return f"Fallback({what}, on=({on}), statuses={self.statuses!r})"


#: What ``fallback=`` accepts: a :class:`Fallback`, a fixed response or a handler.
FallbackSource = Fallback | httpx.Response | FallbackHandler


def as_fallback(value: object, field: str = "fallback") -> Fallback | None:
    """``fallback=`` as a :class:`Fallback`: one as it is, a response or callable wrapped.

    Raises:
        ConfigurationError: ``value`` is none of those, naming ``field``.
    """
    if value is None or isinstance(value, Fallback):
        return value
    if isinstance(value, httpx.Response) or callable(value) or hasattr(value, "to_httpx"):
        return Fallback(value)  # type: ignore[arg-type]  # checked just above
    raise ConfigurationError(
        f"{field} must be a Fallback, an httpx.Response or a callable (request, error) -> "
        f"httpx.Response, got {type(value).__name__}",
        field=field,
    )

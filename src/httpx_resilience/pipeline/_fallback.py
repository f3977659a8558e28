"""Two stages of the pipeline: the fallback around the request, the throttle before each attempt.

:func:`with_fallback` runs the whole logical request (the bulkhead and the
retry loop) and, when it finally fails in a way the request's
:class:`~httpx_resilience.policies.fallback.Fallback` serves, answers with
the fallback's response instead: the failure is passed to it, and the
outcome says so (``ResilienceInfo.fallback``, ``fallback_error``; a
:class:`FallbackServed` event; a WARNING line on ``httpx_resilience.fallback``).
A final response the retry loop gave up on (``exhausted``) is a failure too.

:func:`throttled` is the adaptive throttle's refusal of one attempt, before
the limiter and the breaker: it reports the refusal and raises
:class:`ThrottledError` (after a failed attempt, chained to that failure).

Both run only when their policy is configured: a pipeline without them takes
none of this.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, NoReturn, cast

import httpx

from ..exceptions import ConfigurationError, RetryExhaustedError
from ..observe.events import Event, emit
from ..observe.redact import redact_url
from ..policies.fallback import FallbackServed
from ..policies.throttle import ThrottledError, ThrottleRejected
from ._outcome import EXTENSION_KEY, ResilienceInfo, describe, new_info
from ._report import Reporter
from ._state import RequestState

if TYPE_CHECKING:
    from ..policies.fallback import Fallback
    from ..policies.throttle import AdaptiveThrottle

__all__ = ["throttled", "with_fallback", "with_fallback_sync"]

_log = logging.getLogger("httpx_resilience.fallback")


async def with_fallback(
    s: RequestState,
    run: Callable[[RequestState], Awaitable[httpx.Response]],
    reporter: Reporter,
    now: Callable[[], float],
) -> httpx.Response:
    """``await run(s)``; on a failure ``s.fallback`` serves, its response instead.

    Args:
        s: the request's state (``s.fallback`` is set).
        run: the request's run through the pipeline (the bulkhead, the loop).
        reporter: the observers, for ``RequestFinished`` and :class:`FallbackServed`.
        now: the clock's monotonic reading, for the outcome's ``elapsed``.

    Raises:
        Exception: a failure the fallback does not serve, as it was; or what
            the fallback's handler raised (the failure is its context).
    """
    fallback = s.fallback
    assert fallback is not None
    try:
        response = await run(s)
    except Exception as exc:
        if not fallback.handles(exc):
            raise
        served = await fallback.respond(s.request, exc)  # if it raises: the caller reports
        return _failure_served(s, served, exc, reporter, now)
    info = _info(response)
    if (error := _exhausted(s, fallback, response, info)) is None:
        return response
    try:
        served = await fallback.respond(s.request, error)
    except BaseException:
        await response.aclose()
        raise
    if served is not response:  # the handler may serve the last response itself
        await response.aclose()
    return _served(s, served, error, info, reporter, now)


def with_fallback_sync(
    s: RequestState,
    run: Callable[[RequestState], httpx.Response],
    reporter: Reporter,
    now: Callable[[], float],
) -> httpx.Response:
    """The sync :func:`with_fallback` (``httpx.Client``): ``run(s)``, or the fallback's response.

    The handler must be a plain function here (an ``async def`` one is a
    :class:`ConfigurationError`): the fallback's own :meth:`Fallback.respond`
    is run to its end without an event loop, so the rules stay in one place.
    """
    fallback = s.fallback
    assert fallback is not None
    try:
        response = run(s)
    except Exception as exc:
        if not fallback.handles(exc):
            raise
        return _failure_served(s, _respond_sync(fallback, s.request, exc), exc, reporter, now)
    info = _info(response)
    if (error := _exhausted(s, fallback, response, info)) is None:
        return response
    try:
        served = _respond_sync(fallback, s.request, error)
    except BaseException:
        response.close()
        raise
    if served is not response:  # the handler may serve the last response itself
        response.close()
    return _served(s, served, error, info, reporter, now)


def _respond_sync(fallback: Fallback, request: httpx.Request, error: Exception) -> httpx.Response:
    """``await fallback.respond(...)`` without a loop: it never suspends with a plain handler.

    Raises:
        ConfigurationError: the handler awaited something (an ``async def`` handler).
    """
    handler = getattr(fallback, "_handler", None)
    if _is_async(handler):
        raise _async_handler()
    coro = fallback.respond(request, error)
    try:
        coro.send(None)
    except StopIteration as done:
        return cast(httpx.Response, done.value)
    except RuntimeError as exc:  # the awaitable it returned wanted a running event loop
        if "event loop" not in str(exc):
            raise
        raise _async_handler() from exc
    coro.close()
    raise _async_handler()


def _is_async(handler: object) -> bool:
    """Whether ``handler`` is an ``async def`` function (or a partial of one, or an async
    ``__call__``)."""
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        getattr(handler, "__call__", None)  # noqa: B004 - the method, not callability
    )


def _async_handler() -> ConfigurationError:
    return ConfigurationError(
        "the fallback handler is async (it awaits), which httpx.Client's sync path cannot "
        "run: give a plain function, or use httpx.AsyncClient",
        field="fallback",
    )


def _failure_served(
    s: RequestState,
    served: httpx.Response,
    exc: Exception,
    reporter: Reporter,
    now: Callable[[], float],
) -> httpx.Response:
    """The fallback's response to a failure (``RequestFinished`` for it, if no path sent it)."""
    if reporter.observers:
        reporter.unfinished(s.request, s.start, exc)
    return _served(s, served, exc, None, reporter, now)


def _exhausted(
    s: RequestState, fallback: Fallback, response: httpx.Response, info: ResilienceInfo | None
) -> RetryExhaustedError | None:
    """The failure a final response stands for, when the fallback serves it; else ``None``."""
    if not fallback.handles_response(response.status_code, info is not None and info.exhausted):
        return None
    return _gave_up(s, response, info)


def _info(response: httpx.Response) -> ResilienceInfo | None:
    """The outcome the retry loop put on ``response`` (``None`` when there is none)."""
    info = response.extensions.get(EXTENSION_KEY)
    return info if isinstance(info, ResilienceInfo) else None


def _gave_up(s: RequestState, response: httpx.Response, info: object) -> RetryExhaustedError:
    """The failure a final response stands for: a ``RetryExhaustedError`` with its status."""
    stop = getattr(info, "stop_reason", None)
    status = f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
    return RetryExhaustedError(
        f"{status} after {s.attempt} attempt(s)" + (f" (stopped: {stop})" if stop else ""),
        attempts=s.attempt,
        last_response=response,
        retry_after=s.retry_after,
        request=s.request,
        hint="The fallback served this request",
    )


def _served(
    s: RequestState,
    response: httpx.Response,
    error: Exception,
    info: ResilienceInfo | None,
    reporter: Reporter,
    now: Callable[[], float],
) -> httpx.Response:
    """Mark the fallback's response as the outcome: the extension, the event, the log line."""
    request = s.request
    name = type(error).__name__
    if info is None:
        breaker = s.breaker
        info = new_info(
            s.attempt, now() - s.start, s.total_wait, s.request_id,
            str(breaker.state.value) if breaker is not None else None,
            s.retry_after, False, None, s.hedges,
        )
    response.extensions = {
        **response.extensions,
        EXTENSION_KEY: dataclasses.replace(
            info, exhausted=False, fallback=True, fallback_error=name
        ),
    }
    url = redact_url(request.url)
    _log.warning(
        "Fallback served %s %s (HTTP %d) after %s",
        request.method, url, response.status_code, describe(error),
        extra={
            "method": request.method, "url": url, "host": s.key,
            "request_id": s.request_id, "error_type": name,
            "status_code": response.status_code,
        },
    )
    if reporter.observers:
        event = FallbackServed(
            s.request_id, request.method, url, s.key, name, str(error), response.status_code
        )
        emit(reporter.observers, cast(Event, event))
    return response


def throttled(
    s: RequestState, throttle: AdaptiveThrottle, probability: float, reporter: Reporter
) -> NoReturn:
    """The throttle refused this attempt: report it and raise :class:`ThrottledError`.

    After a failed attempt the error is chained to that failure (``__cause__``).
    """
    requests, accepts = throttle.counts(s.key)
    err = ThrottledError(
        s.key, probability, requests, accepts, attempt=s.attempt, window=throttle.window,
        request=s.request, service=s.service or s.request.url.host or None,
    )
    if reporter.observers:
        event = ThrottleRejected(s.key, probability, requests, accepts, s.attempt, s.request_id)
        emit(reporter.observers, cast(Event, event))
    reporter.fail(s, err, give_up=f"ThrottledError: refused locally ({probability:.0%})")
    raise err from s.last_exc

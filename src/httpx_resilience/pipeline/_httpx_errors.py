"""Errors that stay httpx's: a failure wrapped in our tree keeps the httpx class it stood for.

Code written for plain httpx, and every SDK built on it, catches
``httpx.TimeoutException``, ``httpx.ConnectError`` and their kin. The pipeline
wraps a failure to say more (the attempts, the deadline, the service); the
classes here make the wrapper *also* an instance of the httpx class of the
failure it wraps:

* :func:`retry_exhausted_error` builds the give-up error: a
  :class:`~httpx_resilience.RetryExhaustedError` and an
  :class:`~httpx_resilience.HTTPRequestError` (a
  :class:`~httpx_resilience.RequestTimeoutError` when the last attempt timed
  out or the total deadline ended the retries) of the last error's httpx
  class: ``RetryExhaustedReadTimeout``, ``RetryExhaustedConnectError``...
* :func:`error_class` without ``exhausted`` gives the same without the
  retries: an ``HTTPRequestError`` that is an ``httpx.ConnectError``, a
  ``RequestTimeoutError`` that is an ``httpx.ReadTimeout`` (the client's
  mapping of a raw httpx error, the deadline cutting a first attempt short).

The classes are built on first use, one per (httpx class, exhausted, deadline),
and cached; only httpx's own classes are accepted, so there are a few dozen at
most. They pickle by that key.
"""

from __future__ import annotations

from typing import Any, cast

import httpx

from ..exceptions import (
    TIMEOUT_HINT,
    HTTPClientError,
    HTTPRequestError,
    RequestNotReplayableError,
    RequestTimeoutError,
    RetryExhaustedError,
    restore_error,
)

__all__ = ["error_class", "httpx_class", "retry_exhausted_error"]

_HTTPX_MODULES = frozenset({"httpx", "httpx._exceptions"})

_Key = tuple[type[httpx.RequestError], bool, bool]
_CLASSES: dict[_Key, type[HTTPRequestError]] = {}


class _ExhaustedTransport(RetryExhaustedError, HTTPRequestError):
    """Retries ended on a failure of the transport: the base of the classes built for it."""


# ``attempts`` is ``int | None`` on RequestTimeoutError, an ``int`` here (as on
# RetryExhaustedError): the narrower type is the one that holds.
class _ExhaustedTimeout(_ExhaustedTransport, RequestTimeoutError):  # type: ignore[misc]
    """Retries ended on a timeout, or the total deadline ended them."""

    def __init__(
        self, message: str, *, attempts: int, timeout: float | None = None,
        phase: str = "attempt", **kw: Any,
    ) -> None:
        self.timeout = timeout
        self.phase = phase
        kw.setdefault("hint", TIMEOUT_HINT)
        RetryExhaustedError.__init__(self, message, attempts=attempts, **kw)


def httpx_class(exc: BaseException) -> type[httpx.RequestError] | None:
    """The httpx class of a failure of the transport, or ``None``.

    The nearest of httpx's own request errors in ``exc``'s class hierarchy:
    ``ReadTimeout`` for an ``httpx.ReadTimeout`` (or a subclass of it, ours
    included), ``TimeoutException`` for the pipeline's attempt timeout; a bare
    ``TimeoutError`` stands for ``TimeoutException``. ``None`` for anything
    else, and for our errors that are not a failure of the transport (an open
    breaker, a limiter or bulkhead refusal, a body too large, a body that
    cannot be replayed): those keep their own class.
    """
    if isinstance(exc, HTTPClientError) and (
        not isinstance(exc, HTTPRequestError) or isinstance(exc, RequestNotReplayableError)
    ):
        return None
    for klass in type(exc).__mro__:
        if klass.__module__ in _HTTPX_MODULES and issubclass(klass, httpx.RequestError):
            return klass
    return httpx.TimeoutException if isinstance(exc, TimeoutError) else None


def error_class(
    base: type[httpx.RequestError], exhausted: bool = False, deadline: bool = False
) -> type[HTTPRequestError]:
    """The class of our tree that is also ``base`` (built once, then cached).

    Args:
        base: one of httpx's request errors (``httpx.ReadTimeout``...).
        exhausted: also a :class:`RetryExhaustedError` (retries gave up).
        deadline: also a :class:`RequestTimeoutError` whatever ``base`` is
            (the total deadline ended the request).

    Raises:
        TypeError: ``base`` is not one of httpx's request errors.
    """
    key = (base, exhausted, deadline)
    cls = _CLASSES.get(key)
    if cls is None:
        # setdefault: two threads building the same class end up sharing one.
        cls = _CLASSES.setdefault(key, _build(base, exhausted, deadline))
    return cls


def _build(
    base: type[httpx.RequestError], exhausted: bool, deadline: bool
) -> type[HTTPRequestError]:
    if not (
        isinstance(base, type)
        and issubclass(base, httpx.RequestError)
        and base.__module__ in _HTTPX_MODULES
    ):
        raise TypeError(f"error_class() needs one of httpx's request errors, got {base!r}")
    is_timeout = issubclass(base, httpx.TimeoutException)
    timeout = deadline or is_timeout
    ours: type[HTTPRequestError]
    if exhausted:
        ours = _ExhaustedTimeout if timeout else _ExhaustedTransport
    else:
        ours = RequestTimeoutError if timeout else HTTPRequestError
        if issubclass(ours, base):  # TransportError, TimeoutException: ours already are
            return ours
    name = f"{'RetryExhausted' if exhausted else ''}{base.__name__}"
    if timeout and not is_timeout:
        name += "AtDeadline"
    what = "retries gave up on" if exhausted else "the request failed with"
    namespace = {
        "__module__": __name__,
        "__qualname__": name,
        "__doc__": f"{ours.__name__} raised when {what} an httpx.{base.__name__}; also one.",
        "__reduce__": _reduce,
        "_key": (base, exhausted, deadline),
    }
    return cast("type[HTTPRequestError]", type(name, (ours, base), namespace))


def _reduce(self: HTTPRequestError) -> tuple[Any, ...]:
    return (_restore, (type(self)._key, self.args, dict(self.__dict__)))  # type: ignore[attr-defined]


def _restore(key: _Key, args: tuple[Any, ...], state: dict[str, Any]) -> HTTPClientError:
    """Unpickle an error of a built class: the class from its key, then its state."""
    return restore_error(error_class(*key), args, state)


def retry_exhausted_error(
    message: str,
    *,
    last_error: BaseException | None,
    attempts: int,
    deadline: bool = False,
    timeout: float | None = None,
    **kw: Any,
) -> RetryExhaustedError:
    """The error for retries that gave up, of the class that is also what ``last_error`` was.

    Args:
        message: what happened.
        last_error: the last attempt's exception (``None`` when it was a status).
        attempts: attempts made.
        deadline: the total deadline ended the retries: the error is also a
            :class:`RequestTimeoutError` (``phase="total"``) and an
            ``httpx.TimeoutException``, whatever the last error was.
        timeout: the total timeout, with ``deadline``.
        kw: the other arguments of :class:`RetryExhaustedError` (``request``,
            ``retry_after``, ``hint``...).

    Returns:
        A plain :class:`RetryExhaustedError` when the last error has no httpx
        class (and the deadline did not end the retries), else an instance of
        the built class.
    """
    base = httpx_class(last_error) if last_error is not None else None
    if base is None:
        if not deadline:
            return RetryExhaustedError(message, attempts=attempts, last_error=last_error, **kw)
        base = httpx.TimeoutException
    cls = error_class(base, True, deadline)
    if issubclass(cls, _ExhaustedTimeout):
        if not deadline:
            limit = getattr(last_error, "timeout", None)
            timeout = limit if isinstance(limit, (int, float)) else None
        err: HTTPRequestError = cls(
            message, attempts=attempts, last_error=last_error, timeout=timeout,
            phase="total" if deadline else "attempt", **kw,
        )
    else:
        err = cls(message, attempts=attempts, last_error=last_error, **kw)
    return cast(RetryExhaustedError, err)

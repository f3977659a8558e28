"""``extensions["resilience"]``, typed: the per-request overrides in, the outcome out.

httpx types a request's and a response's ``extensions`` as ``dict[str, Any]``,
so a misspelt override or a wrong value passes every type checker and is
found (if at all) at run time. :class:`ResilienceOptions` names what the
pipeline reads from ``request.extensions["resilience"]``; build the mapping
with it and mypy checks the keys and their types::

    client.get(url, extensions={"resilience": ResilienceOptions(timeout=2.0, idempotent=True)})

What comes out, ``response.extensions["resilience"]``, is a
:class:`~httpx_resilience.ResilienceInfo` (a frozen dataclass, typed already);
:func:`resilience_info` reads it with its type, or ``None`` for a response that
did not come through the pipeline.

The pipeline validates every override when a request starts (a wrong type or
value is a ``ConfigurationError`` naming its key, :mod:`._checks`): the types
here describe what it accepts, they do not replace that check.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol, TypedDict

from ._outcome import EXTENSION_KEY, ResilienceInfo

if TYPE_CHECKING:
    from ..auth.base import AuthHandler
    from ..policies.fallback import FallbackSource
    from ..policies.hedging import HedgingPolicy
    from ..policies.retry import RetryPolicy

__all__ = ["OPTION_KEYS", "HasExtensions", "ResilienceOptions", "resilience_info"]


class ResilienceOptions(TypedDict, total=False):
    """Per-request overrides: ``request.extensions["resilience"]`` (every key optional).

    Attributes:
        retry: the :class:`~httpx_resilience.RetryPolicy` for this request.
        timeout: seconds for one attempt (``None``: no attempt timeout).
        total_timeout: seconds for the whole request, retries and waits
            included (``None``: no deadline).
        idempotent: retry it whatever its method (as an ``Idempotency-Key`` does).
        stream: leave the body unread; only the headers are retried.
        hedging: the :class:`~httpx_resilience.HedgingPolicy` (``None``: no hedging).
        service: the upstream's name in events, logs and metrics.
        max_response_bytes: the cap on the buffered body (``None``: no cap).
        fallback: what answers the request if it finally fails: a
            :class:`~httpx_resilience.Fallback`, an ``httpx.Response`` or a
            callable ``(request, error) -> response`` (``None``: none, even if
            the transport has one).
        auth: written by this package's auth plugins (the handler that signs
            each attempt again); not set by hand.
        auth_origin: written with ``auth``: the origin the credentials are for.
    """

    retry: RetryPolicy
    timeout: float | None
    total_timeout: float | None
    idempotent: bool
    stream: bool
    hedging: HedgingPolicy | None
    service: str
    max_response_bytes: int | None
    fallback: FallbackSource | None
    auth: AuthHandler
    auth_origin: str


OPTION_KEYS: frozenset[str] = ResilienceOptions.__optional_keys__
"""Every key the pipeline reads from ``extensions["resilience"]``."""


class HasExtensions(Protocol):
    """Anything with httpx's ``extensions`` mapping: an ``httpx.Response``, an ``HTTPResponse``."""

    @property
    def extensions(self) -> Mapping[str, object]: ...


def resilience_info(response: HasExtensions) -> ResilienceInfo | None:
    """The outcome the pipeline recorded on ``response``, or ``None`` when there is none.

    Works on an ``httpx.Response`` (from ``httpx.AsyncClient(transport=ResilientTransport())``)
    and on an :class:`~httpx_resilience.HTTPResponse`.
    """
    extensions = response.extensions
    info = extensions.get(EXTENSION_KEY) if extensions else None
    return info if isinstance(info, ResilienceInfo) else None

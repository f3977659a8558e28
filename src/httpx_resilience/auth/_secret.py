"""A holder for secret strings whose ``repr()`` and ``str()`` never show the value.

Every auth plugin keeps its client secrets, tokens, API keys and passwords in a
:class:`Secret`, so an accidental ``print(auth)``, a debugger, a log line or an
exception message shows ``'**********'`` instead of the credential.

A credential can still reach a text through somebody else's message (a server
that echoes it, a protocol error quoting a header): every handler also
registers what it sends with :func:`remember`, so that
:func:`~httpx_resilience.observe.redact.scrub_text` and
:func:`~httpx_resilience.observe.redact.scrub_exception` hide it in every
encoding (raw, percent-encoded, form-encoded, JSON-escaped; the Basic forms
of :func:`basic_forms`).
"""

from __future__ import annotations

import hmac
from base64 import b64encode
from collections.abc import Iterable
from typing import Protocol, TypeAlias, TypeGuard, runtime_checkable
from urllib.parse import quote_plus

from ..observe.logfilter import ensure_httpx_log_redaction
from ..observe.redact import register_secret

__all__ = ["Secret", "SecretLike", "basic_forms", "is_secret_like", "remember", "reveal"]

_MASK = "**********"


@runtime_checkable
class _HasSecretValue(Protocol):
    """Anything with pydantic's ``get_secret_value()`` (``SecretStr``, our :class:`Secret`)."""

    def get_secret_value(self) -> str:
        """Return the plain value."""


class Secret:
    """A string that refuses to show itself.

    ``repr()``, ``str()`` and f-strings give ``**********``; only
    :meth:`get_secret_value` returns the value. Equality is constant-time, so a
    ``Secret`` can be compared without leaking its content through timing.

    Args:
        value: the secret text, or another secret-like object (``Secret``,
            pydantic ``SecretStr``), which is unwrapped.

    Raises:
        TypeError: ``value`` is neither a ``str`` nor secret-like.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str | Secret | _HasSecretValue) -> None:
        if isinstance(value, str):
            self._value = value
        elif isinstance(value, _HasSecretValue):
            inner = value.get_secret_value()
            if not isinstance(inner, str):
                raise TypeError("Secret: get_secret_value() must return a str")
            self._value = inner
        else:
            raise TypeError(f"Secret: expected a str, got {type(value).__name__}")

    def get_secret_value(self) -> str:
        """Return the plain secret (use it only where the credential is sent)."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({_MASK!r})"

    def __str__(self) -> str:
        return _MASK

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            return hmac.compare_digest(self._value.encode(), other._value.encode())
        return NotImplemented

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __reduce__(self) -> tuple[type[Secret], tuple[str]]:
        # Pickling must round-trip (for caches, multiprocessing); the value is
        # only in the pickle bytes, never in any text representation.
        return (Secret, (self._value,))


SecretLike: TypeAlias = str | Secret | _HasSecretValue
"""A plain string or anything that wraps one (``Secret``, pydantic ``SecretStr``)."""


def reveal(value: SecretLike) -> str:
    """Return the plain text of a string or secret-like value."""
    return value if isinstance(value, str) else value.get_secret_value()


def is_secret_like(value: object) -> TypeGuard[SecretLike]:
    """Whether ``value`` is a ``str`` or wraps one (``Secret``, pydantic ``SecretStr``)."""
    return isinstance(value, str | _HasSecretValue)


def basic_forms(user: str, password: str) -> set[str]:
    """The HTTP Basic credentials of ``user:password``: base64 of the pair as it is and
    form-encoded first (RFC 6749 §2.3.1), with and without padding, with and without
    the ``Basic`` scheme."""
    forms: set[str] = set()
    for pair in (f"{user}:{password}", f"{quote_plus(user)}:{quote_plus(password)}"):
        encoded = b64encode(pair.encode()).decode("ascii")
        forms |= {encoded, encoded.rstrip("="), f"Basic {encoded}"}
    return forms


def remember(
    value: SecretLike | bytes, *, forms: Iterable[str] = (), transient: bool = False
) -> None:
    """Register a credential this library sends, so that no scrubbed text shows it.

    Args:
        value: the credential (text, bytes or secret-like).
        forms: more ways it is written (see :func:`basic_forms`).
        transient: a rotating token (a bounded number of the newest is kept).
    """
    if not isinstance(value, bytes):
        value = reveal(value)
    register_secret(value, forms=forms, transient=transient)
    # A credential is about to be sent, perhaps through a plain httpx transport
    # before any ResilientTransport exists: httpx's and httpcore's own log lines
    # must hide it from now on (once; switchable, see observe.logfilter).
    ensure_httpx_log_redaction()

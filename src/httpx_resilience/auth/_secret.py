"""A holder for secret strings whose ``repr()`` and ``str()`` never show the value.

Every auth plugin keeps its client secrets, tokens, API keys and passwords in a
:class:`Secret`, so an accidental ``print(auth)``, a debugger, a log line or an
exception message shows ``'**********'`` instead of the credential.
"""

from __future__ import annotations

import hmac
from typing import Protocol, TypeAlias, TypeGuard, runtime_checkable

__all__ = ["Secret", "SecretLike", "is_secret_like", "reveal"]

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

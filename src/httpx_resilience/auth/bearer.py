"""``Authorization: Bearer <token>`` from a fixed token or a token provider.

Per attempt: a fixed token is not (``per_attempt`` is false); with a provider
(a sync or async callable) it is: the provider is called for every attempt, so
a retry picks up a token the provider has rotated meanwhile.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import TypeAlias

import httpx

from ..exceptions import AuthenticationError, ConfigurationError
from ..observe.redact import scrub_exception
from ._secret import Secret, SecretLike, is_secret_like, remember, reveal
from .base import AuthHandler, _credential_problem

__all__ = ["BearerAuth", "TokenProvider"]

TokenProvider: TypeAlias = Callable[[], "SecretLike | Awaitable[SecretLike]"]
"""A zero-argument callable (plain or ``async``) returning the current token."""


class BearerAuth(AuthHandler):
    """Send ``Authorization: Bearer <token>``.

    Args:
        token: the token (``str`` or :class:`Secret`), or a provider: a
            zero-argument callable, sync or async, returning the current token.
            A provider is called on every attempt (``per_attempt`` is true);
            it is not re-called on a 401 (it has no way to be told the token
            was refused: use :class:`OAuth2ClientCredentials` for that).

    Raises:
        ConfigurationError: a fixed token is empty or not a valid header value
            (``field="token"``).

    Example::

        httpx.AsyncClient(auth=BearerAuth(Secret(os.environ["STORE_API_KEY"])))
    """

    def __init__(self, token: SecretLike | TokenProvider) -> None:
        self._token: Secret | None = None
        self._provider: TokenProvider | None = None
        if is_secret_like(token):
            secret = Secret(token)
            text = secret.get_secret_value()
            remember(text.strip())
            problem = _credential_problem(text)
            if problem:
                raise ConfigurationError(f"BearerAuth: the token {problem}", field="token")
            self._token = secret
        elif callable(token):
            self._provider = token
            self.per_attempt = True
        else:
            raise ConfigurationError(
                f"BearerAuth: token must be a str, a Secret or a callable, "
                f"not {type(token).__name__}",
                field="token",
            )

    def _header(self, value: object) -> str:
        if is_secret_like(value):
            text = reveal(value)
            remember(text.strip(), transient=True)
            problem = _credential_problem(text)
            if problem is None:
                return f"Bearer {text}"
            raise AuthenticationError(f"BearerAuth: the token provider's token {problem}")
        raise AuthenticationError(
            f"BearerAuth: the token provider returned {type(value).__name__}, not a str"
        )

    def _call_provider(self) -> object:
        assert self._provider is not None
        try:
            return self._provider()
        except Exception as exc:
            # The provider's message may quote a credential: name only the type,
            # and scrub the chained error (tracebacks print it).
            scrub_exception(exc)
            raise AuthenticationError(
                f"BearerAuth: the token provider raised {type(exc).__name__}"
            ) from exc

    async def prepare_request(self, request: httpx.Request) -> httpx.Request:
        """Set ``Authorization: Bearer <token>`` (removed for a foreign origin).

        Raises:
            AuthenticationError: the provider raised or returned no usable token.
        """
        if self.is_foreign(request):
            return self.strip_credentials(request)
        if self._token is not None:
            value: object = self._token
        else:
            value = self._call_provider()
            if inspect.isawaitable(value):
                try:
                    value = await value
                except Exception as exc:
                    scrub_exception(exc)
                    raise AuthenticationError(
                        f"BearerAuth: the token provider raised {type(exc).__name__}"
                    ) from exc
        request.headers["Authorization"] = self._header(value)
        return request

    def sync_prepare_request(self, request: httpx.Request) -> httpx.Request:
        """Synchronous :meth:`prepare_request`; an async provider is refused.

        Raises:
            AuthenticationError: the provider is async, raised, or returned no token.
        """
        if self.is_foreign(request):
            return self.strip_credentials(request)
        value: object = self._token if self._token is not None else self._call_provider()
        if inspect.isawaitable(value):
            if inspect.iscoroutine(value):
                value.close()  # never awaited: close it so Python does not warn
            raise AuthenticationError(
                "BearerAuth: the token provider is async and cannot run under a "
                "synchronous httpx.Client",
                hint="Use httpx.AsyncClient, or pass a synchronous provider",
            )
        request.headers["Authorization"] = self._header(value)
        return request

    def __repr__(self) -> str:
        if self._provider is not None:
            name = getattr(self._provider, "__qualname__", type(self._provider).__name__)
            return f"BearerAuth(provider={name})"
        return f"BearerAuth(token={self._token!r})"

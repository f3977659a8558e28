"""An API key in a header (``X-API-KEY`` by default) or a query parameter.

Not per attempt: the key is static, so ``per_attempt`` is false.

httpx forwards custom headers such as ``X-API-KEY`` when it follows a redirect
to another origin; add :func:`~httpx_resilience.auth.async_strip_foreign_credentials`
as a request event hook (our ``AsyncHTTPClient`` does) so the key stays with
its origin. A key in the query is never carried over by httpx (the redirect
target's URL comes from ``Location``), and this handler removes it if asked to
authenticate a request for another origin.
"""

from __future__ import annotations

from typing import Literal

import httpx

from ..exceptions import ConfigurationError
from ..observe.redact import register_sensitive_header, register_sensitive_param
from ._secret import Secret, SecretLike, is_secret_like, remember
from .base import AuthHandler, _credential_problem

__all__ = ["APIKeyAuth"]


class APIKeyAuth(AuthHandler):
    """Send a static API key as a header or a query parameter.

    The key is never shown: in the query, its parameter (whatever ``name``) is
    redacted in every URL the library shows (logs, errors, spans), and the key
    itself is hidden wherever a text is scrubbed.

    Args:
        key: the key (``str`` or :class:`Secret`).
        name: the header or query parameter name.
        location: ``"header"`` (default) or ``"query"``.

    Raises:
        ConfigurationError: ``key`` is empty or not a valid header value
            (``field="key"``), ``name`` is empty (``field="name"``), or
            ``location`` is neither ``"header"`` nor ``"query"`` (``field="location"``).

    Example::

        APIKeyAuth(Secret(api_key))                       # X-API-KEY: <key>
        APIKeyAuth(api_key, name="api_key", location="query")
    """

    def __init__(
        self,
        key: SecretLike,
        name: str = "X-API-KEY",
        location: Literal["header", "query"] = "header",
    ) -> None:
        if location not in ("header", "query"):
            raise ConfigurationError(
                f"APIKeyAuth: location must be 'header' or 'query', not {location!r}",
                field="location",
            )
        if not isinstance(name, str) or not name.strip() or name != name.strip():
            raise ConfigurationError(
                "APIKeyAuth: name must be a non-empty header or parameter name", field="name"
            )
        if not is_secret_like(key):
            raise ConfigurationError(
                f"APIKeyAuth: key must be a str or a Secret, not {type(key).__name__}",
                field="key",
            )
        self._key = Secret(key)
        text = self._key.get_secret_value()
        remember(text.strip())
        # Whatever its name, the parameter (or header) is hidden wherever a URL (or the
        # headers) are shown.
        if location == "query":
            register_sensitive_param(name)
        else:
            register_sensitive_header(name)
        problem = _credential_problem(text) if location == "header" else None
        if not text:
            problem = "is empty"
        if problem:
            raise ConfigurationError(f"APIKeyAuth: the key {problem}", field="key")
        self.name = name
        self.location: Literal["header", "query"] = location

    async def prepare_request(self, request: httpx.Request) -> httpx.Request:
        """Set the key (removed instead for a request redirected to another origin)."""
        return self.sync_prepare_request(request)

    def sync_prepare_request(self, request: httpx.Request) -> httpx.Request:
        """Set the key; works under a synchronous ``httpx.Client`` too."""
        if self.is_foreign(request):
            return self.strip_credentials(request)
        if self.location == "header":
            request.headers[self.name] = self._key.get_secret_value()
        else:
            # merge() replaces an existing value, so a second call does not append.
            request.url = request.url.copy_merge_params({self.name: self._key.get_secret_value()})
        return request

    def strip_credentials(self, request: httpx.Request) -> httpx.Request:
        """Remove the key header or query parameter."""
        if self.location == "header":
            request.headers.pop(self.name, None)
        elif self.name in request.url.params:
            request.url = request.url.copy_remove_param(self.name)
        return request

    @property
    def sensitive_headers(self) -> frozenset[str]:
        """The key's header name, lower-cased, when the key is sent as a header."""
        return frozenset({self.name.lower()}) if self.location == "header" else frozenset()

    @property
    def sensitive_query_params(self) -> frozenset[str]:
        """The key's parameter name when the key is sent in the query."""
        return frozenset({self.name}) if self.location == "query" else frozenset()

    def __repr__(self) -> str:
        return f"APIKeyAuth(key={self._key!r}, name={self.name!r}, location={self.location!r})"

"""OAuth 2.0 client credentials grant (RFC 6749 §4.4) with a cached, shared token.

Per attempt: yes (``per_attempt`` is true). The token is time-based, so the
retrying transport re-applies it before every retry; that costs a cache lookup,
and a token request only when the cached token is (nearly) expired.

How the token is kept:

* **Cached** in a :class:`~httpx_resilience.auth.TokenCache` (in memory by
  default; pass a shared one to give many processes one token) until
  ``expires_in - early_expiry`` seconds after it was issued. For a token that
  lives less than ``2 * early_expiry`` the margin is half its lifetime. A token
  response without ``expires_in`` is kept for ``default_expires_in`` (300 s).
* **Single-flight**: concurrent requests that find no fresh token wait for one
  token request (a hundred callers, one request); they share its result or its
  error. The cache's lock extends this across processes for a shared cache.
* **401 from the resource**: the refused token is invalidated (only that token:
  a newer one is kept), a new one is fetched once and the request is replayed
  once. A second 401 is returned to the caller.
* **Transient token-endpoint faults** (connection errors, timeouts, 5xx, 429)
  are retried ``retry_attempts`` times in all, sleeping
  ``retry_backoff * 2**n`` on the injected clock (0.5 s, 1 s by default).
  ``Retry-After`` is not consulted. When you pass a ``client`` whose transport
  already retries, set ``retry_attempts=1``.
* **Refusals** (4xx) raise :class:`~httpx_resilience.AuthenticationError` with the
  OAuth ``error`` code (``.error``), the HTTP status (``.status_code``) and the
  ``error_description`` in the message, with personal data and the client secret
  redacted in every form it was sent in (raw, percent- or form-encoded,
  JSON-escaped, the base64 of ``client_id:client_secret``), in case the endpoint
  echoes it.

The token is sent as ``Authorization: Bearer <access_token>`` whatever
``token_type`` the endpoint names (other schemes, such as DPoP, are not
supported). The token request is always async (``httpx.AsyncClient``); under a
synchronous ``httpx.Client`` this handler raises ``AuthenticationError``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Literal

import httpx

from ..clock import SYSTEM_CLOCK, Clock
from ..exceptions import ConfigurationError
from ..observe.redact import redact_url, scrub_exception
from ._oauth2_token import BorrowedTransport, TokenRequest
from ._secret import Secret, SecretLike, basic_forms, is_secret_like, remember
from .base import AuthHandler
from .cache import CachedToken, InMemoryTokenCache, TokenCache, token_fingerprint

if TYPE_CHECKING:
    from ..backends._contract import SharedBackend

__all__ = ["OAuth2ClientCredentials"]

_AUTH_METHODS = ("client_secret_basic", "client_secret_post")
_RESERVED_PARAMS = frozenset({"grant_type", "client_id", "client_secret", "scope", "audience"})


def _number(value: object, field: str, *, minimum: float, inclusive: bool = True) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        number = float(value)  # type: ignore[arg-type]
        if number > minimum or (inclusive and number == minimum):
            return number
    bound = f">= {minimum:g}" if inclusive else f"> {minimum:g}"
    raise ConfigurationError(
        f"OAuth2ClientCredentials: {field} must be a number {bound}, got {value!r}", field=field
    )


class OAuth2ClientCredentials(AuthHandler):
    """Obtain, cache and send an OAuth 2.0 access token (client credentials grant).

    Args:
        token_url: the token endpoint (``http`` or ``https``).
        client_id: the client's id.
        client_secret: the client's secret (``str`` or :class:`Secret`).
        scope: a space-separated string or a sequence of scopes.
        audience: sent as ``audience`` (Auth0, Okta and others use it).
        auth_method: ``"client_secret_basic"`` (HTTP Basic, the default) or
            ``"client_secret_post"`` (id and secret in the form body).
        early_expiry: refresh this many seconds before the token expires.
        extra_params: more form fields for the token request.
        client: an ``httpx.AsyncClient`` for token requests (sent with its auth
            disabled); you own it and close it. Without one, each token fetch
            uses a short-lived client of its own, so the handler holds no
            connections and needs no closing.
        transport: the transport for those short-lived clients (it is never
            closed by the handler); cannot be combined with ``client``.
        cache: where tokens live (an :class:`~httpx_resilience.auth.InMemoryTokenCache`
            by default); a shared cache shares tokens between handlers/processes.
        backend: shared state instead of ``cache``: a
            :class:`~httpx_resilience.RedisBackend` gives every process one
            token, one refresh at a time (a ``RedisTokenCache``); a
            :class:`~httpx_resilience.MemoryBackend` shares tokens between the
            handlers of this process.
        clock: time source (tests pass a fake clock).
        timeout: seconds for each token request.
        retry_attempts: token requests in all for transient faults (>= 1).
        retry_backoff: first backoff in seconds; doubles per attempt.
        default_expires_in: lifetime assumed when the response has no ``expires_in``.

    Raises:
        ConfigurationError: an argument is invalid; ``.field`` names it
            (``token_url`` not http(s), empty ``client_id``/``client_secret``,
            unknown ``auth_method``, negative ``early_expiry``, ``client`` and
            ``transport`` both given, ...).

    Example::

        auth = OAuth2ClientCredentials(
            "https://login.example.com/oauth/token", "svc", Secret(secret), scope="orders:read"
        )
        async with httpx.AsyncClient(auth=auth) as client:
            await client.get("https://api.example.com/orders")
    """

    per_attempt = True
    refreshable = True
    DEFAULT_EXPIRES_IN = 300.0

    def __init__(
        self,
        token_url: str | httpx.URL,
        client_id: str,
        client_secret: SecretLike,
        scope: str | Sequence[str] | None = None,
        audience: str | None = None,
        auth_method: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic",
        early_expiry: float = 30.0,
        extra_params: Mapping[str, str] | None = None,
        *,
        client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        cache: TokenCache | None = None,
        backend: SharedBackend | None = None,
        clock: Clock | None = None,
        timeout: float = 10.0,
        retry_attempts: int = 3,
        retry_backoff: float = 0.5,
        default_expires_in: float = DEFAULT_EXPIRES_IN,
    ) -> None:
        self.token_url = self._check_url(token_url)
        if not isinstance(client_id, str) or not client_id.strip():
            raise ConfigurationError(
                "OAuth2ClientCredentials: client_id must be a non-empty string", field="client_id"
            )
        if not is_secret_like(client_secret) or not Secret(client_secret):
            raise ConfigurationError(
                "OAuth2ClientCredentials: client_secret must be a non-empty str or Secret",
                field="client_secret",
            )
        if auth_method not in _AUTH_METHODS:
            raise ConfigurationError(
                f"OAuth2ClientCredentials: auth_method must be one of {_AUTH_METHODS}, "
                f"not {auth_method!r}",
                field="auth_method",
            )
        if client is not None and transport is not None:
            raise ConfigurationError(
                "OAuth2ClientCredentials: pass either client or transport, not both",
                field="transport",
            )
        if client is not None and not isinstance(client, httpx.AsyncClient):
            raise ConfigurationError(
                "OAuth2ClientCredentials: client must be an httpx.AsyncClient "
                "(token requests are never blocking)",
                field="client",
            )
        if cache is not None and backend is not None:
            raise ConfigurationError(
                "OAuth2ClientCredentials: pass either cache or backend, not both "
                "(backend= builds the shared cache)",
                field="backend",
            )
        if backend is not None:
            from ..backends._tokens import token_cache_for

            cache = token_cache_for(backend, clock=clock)
        if cache is not None and not isinstance(cache, TokenCache):
            raise ConfigurationError(
                "OAuth2ClientCredentials: cache must implement TokenCache", field="cache"
            )
        if isinstance(retry_attempts, bool) or not isinstance(retry_attempts, int):
            raise ConfigurationError(
                "OAuth2ClientCredentials: retry_attempts must be an int >= 1",
                field="retry_attempts",
            )
        _number(retry_attempts, "retry_attempts", minimum=1)
        self.client_id = client_id
        self._client_secret = Secret(client_secret)
        plain = self._client_secret.get_secret_value()
        remember(plain, forms=basic_forms(client_id, plain))
        self.scope = self._check_scope(scope)
        if audience is not None and (not isinstance(audience, str) or not audience):
            raise ConfigurationError(
                "OAuth2ClientCredentials: audience must be a non-empty string", field="audience"
            )
        self.audience = audience
        self.auth_method = auth_method
        self.early_expiry = _number(early_expiry, "early_expiry", minimum=0)
        self._extra = self._check_extra(extra_params)
        self.timeout = _number(timeout, "timeout", minimum=0, inclusive=False)
        self.retry_attempts = retry_attempts
        self.retry_backoff = _number(retry_backoff, "retry_backoff", minimum=0)
        self.default_expires_in = _number(
            default_expires_in, "default_expires_in", minimum=0, inclusive=False
        )
        self._clock = clock or SYSTEM_CLOCK
        self._cache: TokenCache = cache if cache is not None else InMemoryTokenCache(clock=clock)
        self._client = client
        self._transport = transport
        self._inflight: asyncio.Task[CachedToken] | None = None
        self.cache_key = self._make_cache_key()

    # -- validation -------------------------------------------------------------

    @staticmethod
    def _check_url(token_url: object) -> httpx.URL:
        try:
            url = httpx.URL(token_url)  # type: ignore[arg-type]
        except (TypeError, httpx.InvalidURL):
            url = None
        if url is None or url.scheme not in ("http", "https") or not url.host:
            shown = redact_url(token_url) if isinstance(token_url, str | httpx.URL) else "?"
            raise ConfigurationError(
                "OAuth2ClientCredentials: token_url must be an absolute http(s) URL, "
                f"got {shown!r}",
                field="token_url",
            )
        return url

    @staticmethod
    def _check_scope(scope: str | Sequence[str] | None) -> str | None:
        if scope is None:
            return None
        if isinstance(scope, str):
            return scope.strip() or None
        if isinstance(scope, Sequence) and all(isinstance(s, str) and s.strip() for s in scope):
            return " ".join(s.strip() for s in scope) or None
        raise ConfigurationError(
            "OAuth2ClientCredentials: scope must be a string or a sequence of strings",
            field="scope",
        )

    @staticmethod
    def _check_extra(extra: Mapping[str, str] | None) -> dict[str, str]:
        if extra is None:
            return {}
        if not isinstance(extra, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in extra.items()
        ):
            raise ConfigurationError(
                "OAuth2ClientCredentials: extra_params must map strings to strings",
                field="extra_params",
            )
        clash = sorted(_RESERVED_PARAMS & set(extra))
        if clash:
            raise ConfigurationError(
                f"OAuth2ClientCredentials: extra_params may not set {clash}; "
                "use the matching arguments",
                field="extra_params",
            )
        return dict(extra)

    def _make_cache_key(self) -> str:
        # Everything that changes which token the endpoint issues, never the secret.
        material = json.dumps(
            [
                str(self.token_url),
                self.client_id,
                self.scope,
                self.audience,
                sorted(self._extra.items()),
            ]
        )
        return "oauth2:" + hashlib.sha256(material.encode()).hexdigest()[:32]

    # -- token lifecycle ----------------------------------------------------------

    def _fresh(self, token: CachedToken) -> bool:
        margin = self.early_expiry
        if token.issued_at is not None:
            margin = min(margin, max(0.0, token.expires_at - token.issued_at) / 2)
        return self._clock.wall() < token.expires_at - margin

    async def _get_token(self) -> CachedToken:
        token = await self._cache.get(self.cache_key)
        if token is not None and self._fresh(token):
            return token
        loop = asyncio.get_running_loop()
        task = self._inflight
        if task is None or task.done() or task.get_loop() is not loop:
            task = loop.create_task(self._refresh())
            # Retrieve the outcome even when every waiter was cancelled, so the
            # loop never reports "exception was never retrieved".
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            self._inflight = task
        # shield: a cancelled caller must not cancel the fetch the others wait for.
        return await asyncio.shield(task)

    async def _refresh(self) -> CachedToken:
        async with self._cache.lock(self.cache_key):
            # Another handler or process may have refreshed while we waited.
            token = await self._cache.get(self.cache_key)
            if token is not None and self._fresh(token):
                return token
            token = await self._fetch()
            await self._cache.set(self.cache_key, token, token.expires_at - self._clock.wall())
            return token

    def _token_request(self) -> TokenRequest:
        """The token request the handler's current settings describe."""
        return TokenRequest(
            token_url=self.token_url,
            client_id=self.client_id,
            client_secret=self._client_secret,
            auth_method=self.auth_method,
            scope=self.scope,
            audience=self.audience,
            extra=self._extra,
            timeout=self.timeout,
            retry_attempts=self.retry_attempts,
            retry_backoff=self.retry_backoff,
            default_expires_in=self.default_expires_in,
            clock=self._clock,
        )

    async def _fetch(self) -> CachedToken:
        token_request = self._token_request()
        if self._client is not None:
            return await token_request.send(self._client)
        # Token requests are rare (one per token lifetime), so a client per fetch
        # costs little and leaves the handler with no connections to close and no
        # tie to one event loop.
        transport = None if self._transport is None else BorrowedTransport(self._transport)
        async with httpx.AsyncClient(transport=transport, timeout=self.timeout) as client:
            return await token_request.send(client)

    # -- AuthHandler --------------------------------------------------------------

    async def prepare_request(self, request: httpx.Request) -> httpx.Request:
        """Set ``Authorization: Bearer <access token>``, fetching a token when needed.

        Raises:
            AuthenticationError: the token endpoint refused, was unavailable after
                the retries, or returned an unusable token response.
        """
        if self.is_foreign(request):
            return self.strip_credentials(request)
        try:
            token = await self._get_token()
        except Exception as exc:
            # The chained transport error or a custom cache's message may quote a secret.
            scrub_exception(exc)
            raise
        access = token.access_token.get_secret_value()
        remember(access, transient=True)
        request.headers["Authorization"] = f"Bearer {access}"
        return request

    async def invalidate(self, request: httpx.Request) -> None:
        """Drop the cached token if it is the one ``request`` carried."""
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value:
            await self._cache.delete(self.cache_key, fingerprint=token_fingerprint(value))

    def __repr__(self) -> str:
        return (
            f"OAuth2ClientCredentials(token_url={redact_url(self.token_url)!r}, "
            f"client_id={self.client_id!r}, client_secret=Secret('**********'), "
            f"scope={self.scope!r}, auth_method={self.auth_method!r})"
        )

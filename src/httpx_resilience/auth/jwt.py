"""Short-lived service tokens signed locally: ``Authorization: Bearer <JWT>``.

Per attempt: yes (``per_attempt`` is true, the token is time-based), but cheap:
a signed token is reused until ``early_expiry`` seconds before its ``exp`` and
only then re-signed, never per request. A 401 from the origin drops the token,
so the replay carries a freshly signed one (useful after a key rotation through
a key provider).

Needs PyJWT: ``pip install 'httpx-resilience[jwt]'`` (RS256 and ES256 also
need ``cryptography``, which that extra brings). PyJWT is imported when a
``JWTAuth`` is created, not when this package is imported.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any, TypeAlias

import httpx

from ..clock import SYSTEM_CLOCK, Clock
from ..exceptions import AuthenticationError, ConfigurationError
from ..observe.redact import scrub_exception
from ._secret import Secret, SecretLike, is_secret_like, remember, reveal
from .base import AuthHandler

__all__ = ["ALGORITHMS", "JWTAuth", "JWTKey"]

ALGORITHMS = ("HS256", "RS256", "ES256")
"""The signing algorithms JWTAuth supports."""

_INSTALL_HINT = "pip install 'httpx-resilience[jwt]'"
_RESERVED_CLAIMS = frozenset({"iss", "aud", "sub", "iat", "exp"})

JWTKey: TypeAlias = "SecretLike | bytes | Callable[[], SecretLike | bytes]"
"""An HMAC secret or a PEM private key (text, bytes or :class:`Secret`), or a
zero-argument callable returning one (called whenever a token is signed)."""


def _load_pyjwt(algorithm: str) -> ModuleType:
    try:
        import jwt as pyjwt
    except ImportError as exc:
        raise ImportError(f"JWTAuth needs PyJWT: {_INSTALL_HINT}") from exc
    if algorithm != "HS256":
        from jwt.algorithms import has_crypto

        if not has_crypto:
            raise ImportError(f"JWTAuth with {algorithm} needs cryptography: {_INSTALL_HINT}")
    return pyjwt


def _positive(value: object, field: str, *, allow_zero: bool) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        number = float(value)
        if number > 0 or (allow_zero and number == 0):
            return number
    bound = ">= 0" if allow_zero else "> 0"
    raise ConfigurationError(
        f"JWTAuth: {field} must be a number {bound}, got {value!r}", field=field
    )


def _json_mapping(value: Mapping[str, Any] | None, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ConfigurationError(f"JWTAuth: {field} must be a mapping with str keys", field=field)
    try:
        json.dumps(dict(value))
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"JWTAuth: {field} must be JSON-serialisable", field=field
        ) from exc
    return dict(value)


class JWTAuth(AuthHandler):
    """Sign a short-lived JWT and send it as ``Authorization: Bearer <token>``.

    The payload has ``iat`` and ``exp`` (``iat + ttl``), plus ``iss``, ``aud``
    and ``sub`` when given, plus ``claims``.

    Args:
        key: the HMAC secret (HS256) or PEM private key (RS256, ES256), as
            ``str``, ``bytes`` or :class:`Secret`; or a zero-argument callable
            returning one, called at each signing (for key rotation, or a key
            that may be missing: its error is raised as ``AuthenticationError``,
            which :class:`FallbackAuth` can fall back from).
        algorithm: ``"HS256"``, ``"RS256"`` or ``"ES256"``.
        issuer: the ``iss`` claim.
        audience: the ``aud`` claim (a string or a list of strings).
        subject: the ``sub`` claim.
        ttl: token lifetime in seconds.
        claims: more claims; may not contain ``iss``/``aud``/``sub``/``iat``/``exp``.
        headers: more JOSE headers (such as ``kid``); may not contain ``alg``.
        early_expiry: re-sign this many seconds before ``exp`` (less than ``ttl``).
        clock: time source (tests pass a fake clock).

    Raises:
        ImportError: PyJWT (or, for RS256/ES256, cryptography) is not installed;
            the message gives ``pip install 'httpx-resilience[jwt]'``.
        ConfigurationError: ``.field`` names the bad argument (``algorithm``
            not supported, empty ``key``, ``ttl`` not positive, reserved names
            in ``claims``/``headers``, ``early_expiry`` not below ``ttl``).
    """

    per_attempt = True
    refreshable = True

    def __init__(
        self,
        key: JWTKey,
        algorithm: str = "HS256",
        *,
        issuer: str | None = None,
        audience: str | Sequence[str] | None = None,
        subject: str | None = None,
        ttl: float = 300.0,
        claims: Mapping[str, Any] | None = None,
        headers: Mapping[str, Any] | None = None,
        early_expiry: float = 30.0,
        clock: Clock | None = None,
    ) -> None:
        if algorithm not in ALGORITHMS:
            raise ConfigurationError(
                f"JWTAuth: algorithm must be one of {ALGORITHMS}, not {algorithm!r}",
                field="algorithm",
            )
        self._pyjwt = _load_pyjwt(algorithm)
        self.algorithm = algorithm
        self._key: Secret | bytes | None = None
        self._key_provider: Callable[[], SecretLike | bytes] | None = None
        if is_secret_like(key) or isinstance(key, bytes):
            self._key = key if isinstance(key, bytes) else Secret(key)
            if not self._key:
                raise ConfigurationError("JWTAuth: key is empty", field="key")
            remember(self._key)
        elif callable(key):
            self._key_provider = key
        else:
            raise ConfigurationError(
                "JWTAuth: key must be str, bytes, a Secret or a callable, "
                f"not {type(key).__name__}",
                field="key",
            )
        for name, value in (("issuer", issuer), ("subject", subject)):
            if value is not None and (not isinstance(value, str) or not value):
                raise ConfigurationError(f"JWTAuth: {name} must be a non-empty string", field=name)
        if audience is not None and not (
            (isinstance(audience, str) and audience)
            or (
                isinstance(audience, Sequence)
                and audience
                and all(isinstance(a, str) and a for a in audience)
            )
        ):
            raise ConfigurationError(
                "JWTAuth: audience must be a non-empty string or list of strings", field="audience"
            )
        self.issuer = issuer
        self.audience: str | list[str] | None = (
            audience if audience is None or isinstance(audience, str) else list(audience)
        )
        self.subject = subject
        self.ttl = _positive(ttl, "ttl", allow_zero=False)
        self.early_expiry = _positive(early_expiry, "early_expiry", allow_zero=True)
        if self.early_expiry >= self.ttl:
            raise ConfigurationError(
                f"JWTAuth: early_expiry ({self.early_expiry:g}) must be less than "
                f"ttl ({self.ttl:g})",
                field="early_expiry",
            )
        self._claims = _json_mapping(claims, "claims")
        reserved = sorted(_RESERVED_CLAIMS & set(self._claims))
        if reserved:
            raise ConfigurationError(
                f"JWTAuth: claims may not set {reserved}; use issuer=, audience=, subject=, ttl=",
                field="claims",
            )
        self._headers = _json_mapping(headers, "headers")
        if "alg" in self._headers:
            raise ConfigurationError("JWTAuth: headers may not set 'alg'", field="headers")
        self._clock = clock or SYSTEM_CLOCK
        self._token: Secret | None = None
        self._refresh_at = 0.0
        # Sync clients may share the handler across threads; signing is quick.
        self._lock = threading.Lock()

    def _signing_key(self) -> str | bytes:
        if self._key is not None:
            return self._key if isinstance(self._key, bytes) else self._key.get_secret_value()
        assert self._key_provider is not None
        try:
            value = self._key_provider()
        except Exception as exc:
            scrub_exception(exc)  # chained below: its message may quote the key
            raise AuthenticationError(
                f"JWTAuth: the key provider raised {type(exc).__name__}",
                hint="Check that the signing key is configured and readable",
            ) from exc
        if isinstance(value, bytes) and value:
            remember(value)
            return value
        if is_secret_like(value) and reveal(value):
            remember(value)
            return reveal(value)
        raise AuthenticationError(
            f"JWTAuth: the key provider returned no usable key ({type(value).__name__})",
            hint="Check that the signing key is configured and readable",
        )

    def _sign(self, now: float) -> Secret:
        issued = int(now)
        payload: dict[str, Any] = dict(self._claims)
        payload["iat"] = issued
        payload["exp"] = issued + math.ceil(self.ttl)
        if self.issuer is not None:
            payload["iss"] = self.issuer
        if self.audience is not None:
            payload["aud"] = self.audience
        if self.subject is not None:
            payload["sub"] = self.subject
        key = self._signing_key()
        try:
            token = self._pyjwt.encode(
                payload, key, algorithm=self.algorithm, headers=self._headers or None
            )
        except Exception as exc:
            # The library's message is about the key's format; never the key itself,
            # but we name only the type and scrub the chained error to be safe.
            scrub_exception(exc)
            raise AuthenticationError(
                f"JWTAuth: could not sign a {self.algorithm} token ({type(exc).__name__})",
                hint=f"Check that the key is a valid {self.algorithm} signing key",
            ) from exc
        self._refresh_at = issued + math.ceil(self.ttl) - self.early_expiry
        remember(str(token), transient=True)
        return Secret(str(token))

    def token(self) -> Secret:
        """Return the current token, signing a new one when it is near expiry.

        Raises:
            AuthenticationError: the key is missing or invalid.
        """
        with self._lock:
            now = self._clock.wall()
            if self._token is None or now >= self._refresh_at:
                self._token = self._sign(now)
            return self._token

    async def prepare_request(self, request: httpx.Request) -> httpx.Request:
        """Set ``Authorization: Bearer <JWT>`` (removed for a foreign origin).

        Raises:
            AuthenticationError: the token could not be signed.
        """
        return self.sync_prepare_request(request)

    def sync_prepare_request(self, request: httpx.Request) -> httpx.Request:
        """The same as :meth:`prepare_request`; signing needs no async I/O.

        Raises:
            AuthenticationError: the token could not be signed.
        """
        if self.is_foreign(request):
            return self.strip_credentials(request)
        request.headers["Authorization"] = f"Bearer {self.token().get_secret_value()}"
        return request

    async def invalidate(self, request: httpx.Request) -> None:
        """Drop the current token if ``request`` carried it, so the next one is re-signed."""
        header = request.headers.get("Authorization", "")
        with self._lock:
            if self._token is not None and header == f"Bearer {self._token.get_secret_value()}":
                self._token = None

    def __repr__(self) -> str:
        key = "provider" if self._key_provider is not None else "Secret('**********')"
        return (
            f"JWTAuth(algorithm={self.algorithm!r}, issuer={self.issuer!r}, "
            f"audience={self.audience!r}, subject={self.subject!r}, ttl={self.ttl:g}, key={key})"
        )

"""Auth plugins: each is an :class:`AuthHandler` and also a valid ``httpx.Auth``.

================================  ===========  ==================================
handler                           per attempt  credential
================================  ===========  ==================================
:class:`BearerAuth` (fixed token)  no           ``Authorization: Bearer <token>``
:class:`BearerAuth` (provider)     yes          the provider's current token
:class:`APIKeyAuth`                no           ``X-API-KEY`` header or a query key
:class:`BasicAuth`                 no           ``Authorization: Basic ...``
:class:`OAuth2ClientCredentials`   yes          a cached, single-flight access token
:class:`JWTAuth`                   yes          a locally signed, reused short JWT
:class:`FallbackAuth`              if either    primary, else fallback (seed 004)
================================  ===========  ==================================

"Per attempt" handlers are re-applied by the retrying transport before every
retry (see :mod:`httpx_resilience.auth.base` for the extension contract), so a
retry never resends an expired token. Every handler keeps its secrets in a
:class:`Secret`: ``repr()``, logs and error messages never show them.
"""

from __future__ import annotations

from ._secret import Secret
from .api_key import APIKeyAuth
from .base import (
    AuthHandler,
    async_strip_foreign_credentials,
    strip_foreign_credentials,
)
from .basic import BasicAuth
from .bearer import BearerAuth
from .cache import CachedToken, InMemoryTokenCache, TokenCache
from .fallback import FallbackAuth
from .jwt import JWTAuth
from .oauth2 import OAuth2ClientCredentials

__all__ = [
    "APIKeyAuth",
    "AuthHandler",
    "BasicAuth",
    "BearerAuth",
    "CachedToken",
    "FallbackAuth",
    "InMemoryTokenCache",
    "JWTAuth",
    "OAuth2ClientCredentials",
    "Secret",
    "TokenCache",
    "async_strip_foreign_credentials",
    "strip_foreign_credentials",
]

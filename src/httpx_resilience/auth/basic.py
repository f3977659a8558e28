"""HTTP Basic authentication (RFC 7617).

Not per attempt: the credentials are static, so ``per_attempt`` is false.
"""

from __future__ import annotations

from base64 import b64encode

import httpx

from ..exceptions import ConfigurationError
from ._secret import Secret, SecretLike, basic_forms, is_secret_like, remember
from .base import AuthHandler

__all__ = ["BasicAuth"]


class BasicAuth(AuthHandler):
    """Send ``Authorization: Basic base64(username:password)`` (UTF-8).

    Args:
        username: the user id; it may not contain ``:`` (RFC 7617).
        password: the password (``str`` or :class:`Secret`; may be empty).

    Raises:
        ConfigurationError: ``username`` is empty, not a string or contains
            ``:`` (``field="username"``); ``password`` is not a string or
            secret (``field="password"``).
    """

    def __init__(self, username: str, password: SecretLike) -> None:
        if not isinstance(username, str) or not username or ":" in username:
            raise ConfigurationError(
                "BasicAuth: username must be a non-empty string without ':'", field="username"
            )
        if not is_secret_like(password):
            raise ConfigurationError(
                f"BasicAuth: password must be a str or a Secret, not {type(password).__name__}",
                field="password",
            )
        self.username = username
        plain = Secret(password).get_secret_value()
        remember(plain, forms=basic_forms(username, plain))
        userpass = f"{username}:{plain}".encode()
        self._header = Secret(f"Basic {b64encode(userpass).decode('ascii')}")

    async def prepare_request(self, request: httpx.Request) -> httpx.Request:
        """Set the ``Authorization`` header (removed for a foreign origin)."""
        return self.sync_prepare_request(request)

    def sync_prepare_request(self, request: httpx.Request) -> httpx.Request:
        """Set the ``Authorization`` header; works under a synchronous client too."""
        if self.is_foreign(request):
            return self.strip_credentials(request)
        request.headers["Authorization"] = self._header.get_secret_value()
        return request

    def __repr__(self) -> str:
        return f"BasicAuth(username={self.username!r}, password=Secret('**********'))"

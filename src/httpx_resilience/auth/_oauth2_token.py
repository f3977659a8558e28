"""The OAuth 2.0 token endpoint: one client-credentials token request, its retries and its answer.

:class:`TokenRequest` is what :class:`~httpx_resilience.auth.OAuth2ClientCredentials`
sends when it needs a token: the form (RFC 6749 §4.4.2), the client's
authentication (HTTP Basic, or id and secret in the form), the retries for
transient faults (connection errors, timeouts, 5xx, 429), and the parsing of the
token response (RFC 6749 §5.1) or the error response (§5.2) into a
:class:`~httpx_resilience.auth.CachedToken` or an
:class:`~httpx_resilience.AuthenticationError`. An ``error_description`` is
scrubbed of the client secret and personal data before it reaches a message.
"""

from __future__ import annotations

import logging
import math
import re
from base64 import b64encode
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote_plus

import httpx

from ..clock import Clock
from ..exceptions import AuthenticationError
from ..observe.redact import REDACTED, mask_pii, redact_url, scrub_text, secret_forms
from ..policies._testing_mode import active, cap_attempts
from ._secret import Secret, basic_forms
from .base import _credential_problem
from .cache import CachedToken

__all__ = ["BorrowedTransport", "TokenRequest"]

logger = logging.getLogger("httpx_resilience.auth")

# RFC 6749 §5.2: error codes are %x20-21 / %x23-5B / %x5D-7E.
_ERROR_CODE = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]{1,64}")
_MAX_DESCRIPTION = 200
# The token request authenticates itself (Basic header or form fields); a
# no-op Auth keeps a caller-supplied client's own auth out of it.
_NO_AUTH = httpx.Auth()


class BorrowedTransport(httpx.AsyncBaseTransport):
    """A caller's transport lent to a short-lived client, which must not close it."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        """Leave the transport open: its owner closes it."""


_HINTS = {
    "invalid_client": "Check client_id, client_secret and auth_method",
    "unauthorized_client": "This client may not use the client_credentials grant",
    "invalid_scope": "Check the requested scope",
    "invalid_request": "Check scope, audience and extra_params",
    "unsupported_grant_type": "The token endpoint does not offer the client_credentials grant",
}


def _parse_expires_in(value: object) -> float:
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number) or number < 0:
        raise AuthenticationError(
            "OAuth2 token response: field 'expires_in' must be a non-negative number of seconds, "
            f"got {type(value).__name__}"
        )
    return number


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenRequest:
    """One client-credentials token request, as the handler's settings describe it.

    Args:
        token_url: the token endpoint.
        client_id: the client's id.
        client_secret: the client's secret (never empty).
        auth_method: ``"client_secret_basic"`` or ``"client_secret_post"``.
        scope: the space-separated scopes, or ``None``.
        audience: the ``audience`` form field, or ``None``.
        extra: more form fields.
        timeout: seconds for each token request.
        retry_attempts: token requests in all for transient faults (>= 1).
        retry_backoff: first backoff in seconds; doubles per attempt.
        default_expires_in: lifetime assumed when the response has no ``expires_in``.
        clock: sleeps between attempts and stamps the token's issue time.
    """

    token_url: httpx.URL
    client_id: str
    client_secret: Secret
    auth_method: Literal["client_secret_basic", "client_secret_post"]
    scope: str | None
    audience: str | None
    extra: Mapping[str, str]
    timeout: float
    retry_attempts: int
    retry_backoff: float
    default_expires_in: float
    clock: Clock

    def parts(self) -> tuple[dict[str, str], dict[str, str]]:
        """The form fields and headers of the token request."""
        data = {"grant_type": "client_credentials"}
        if self.scope:
            data["scope"] = self.scope
        if self.audience:
            data["audience"] = self.audience
        data.update(self.extra)
        headers = {"Accept": "application/json"}
        secret = self.client_secret.get_secret_value()
        if self.auth_method == "client_secret_basic":
            # RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
            pair = f"{quote_plus(self.client_id)}:{quote_plus(secret)}".encode()
            headers["Authorization"] = "Basic " + b64encode(pair).decode("ascii")
        else:
            data["client_id"] = self.client_id
            data["client_secret"] = secret
        return data, headers

    async def send(self, client: httpx.AsyncClient) -> CachedToken:
        """Request a token through ``client``, retrying transient faults.

        Raises:
            AuthenticationError: the endpoint refused, was unavailable after
                ``retry_attempts`` attempts, or returned an unusable response.
        """
        data, headers = self.parts()
        shown = redact_url(self.token_url)
        last_exc: Exception | None = None
        last_response: httpx.Response | None = None
        reason = ""
        attempts = cap_attempts(self.retry_attempts)  # the testing switch may cap them
        for attempt in range(1, attempts + 1):
            try:
                response = await client.post(
                    self.token_url, data=data, headers=headers, auth=_NO_AUTH, timeout=self.timeout
                )
            except httpx.TransportError as exc:
                last_exc, last_response = exc, None
                reason = type(exc).__name__
            else:
                if response.status_code != 429 and response.status_code < 500:
                    return self.parse(response)
                last_exc, last_response = None, response
                reason = f"HTTP {response.status_code}"
            if attempt < attempts:
                delay = 0.0 if active() is not None else self.retry_backoff * 2 ** (attempt - 1)
                logger.warning(
                    "OAuth2 token endpoint %s failed (%s); retrying in %.1f s (attempt %d/%d)",
                    shown,
                    reason,
                    delay,
                    attempt,
                    attempts,
                )
                if delay:
                    await self.clock.sleep(delay)
        error, description = self.error_fields(last_response)
        message = f"OAuth2 token endpoint unavailable after {attempts} attempt(s): {reason}"
        if error:
            message += f" ({error}{': ' + description if description else ''})"
        raise AuthenticationError(
            message,
            error=error,
            status_code=None if last_response is None else last_response.status_code,
            method="POST",
            url=self.token_url,
            hint="The token endpoint is down or overloaded; try again later",
        ) from last_exc

    def secret_forms(self) -> list[str]:
        """Every way the client secret was sent or may be echoed, longest first.

        Raw, percent-encoded (``quote`` and ``quote_plus``, as in the form body),
        JSON- and repr-escaped, and the Basic credentials of ``client_id:secret``
        (base64 of the pair, plain and form-encoded, with and without padding).
        """
        secret = self.client_secret.get_secret_value()
        forms = secret_forms(secret) | basic_forms(self.client_id, secret)
        return sorted(forms, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        """``text`` without the client secret or personal data, shortened for a message."""
        # A careless server may echo what it was sent, in any encoding; the secret is
        # never empty. Replaced here even if the process-wide registry forgot it.
        for form in self.secret_forms():
            text = text.replace(form, REDACTED)
        text = mask_pii(scrub_text(" ".join(text.split())))
        if len(text) > _MAX_DESCRIPTION:
            text = text[: _MAX_DESCRIPTION - 1] + "…"
        return text

    def error_fields(self, response: httpx.Response | None) -> tuple[str | None, str | None]:
        """The OAuth ``error`` code and scrubbed ``error_description`` of an error response."""
        if response is None:
            return None, None
        try:
            body = response.json()
        except ValueError:
            return None, None
        if not isinstance(body, dict):
            return None, None
        error = body.get("error")
        code = error if isinstance(error, str) and _ERROR_CODE.fullmatch(error) else None
        if code is not None and self.scrub(code) != code:
            code = REDACTED  # an error code that carries the secret is no code
        description = body.get("error_description")
        text = self.scrub(description) if isinstance(description, str) and description else None
        return code, text

    def parse(self, response: httpx.Response) -> CachedToken:
        """The token in a (non-retryable) token endpoint response.

        Raises:
            AuthenticationError: the endpoint refused (non-2xx), or the body is
                not a JSON object with a usable ``access_token`` and ``expires_in``.
        """
        status = response.status_code
        if not 200 <= status < 300:
            error, description = self.error_fields(response)
            detail = f"HTTP {status}"
            if error:
                detail += f" {error}"
            if description:
                detail += f": {description}"
            raise AuthenticationError(
                f"OAuth2 token request refused: {detail}",
                error=error,
                status_code=status,
                method="POST",
                url=self.token_url,
                hint=_HINTS.get(error or "", "Check the client credentials and token_url"),
            )
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise AuthenticationError(
                "OAuth2 token response is not a JSON object",
                status_code=status,
                method="POST",
                url=self.token_url,
            )
        token = body.get("access_token")
        if not isinstance(token, str) or _credential_problem(token):
            raise AuthenticationError(
                "OAuth2 token response: field 'access_token' is missing or not a usable string",
                status_code=status,
                method="POST",
                url=self.token_url,
            )
        raw = body.get("expires_in")
        lifetime = self.default_expires_in if raw is None else _parse_expires_in(raw)
        now = self.clock.wall()
        logger.debug(
            "OAuth2: obtained an access token for client_id %r from %s (expires in %.0f s)",
            self.client_id,
            redact_url(self.token_url),
            lifetime,
        )
        return CachedToken(access_token=Secret(token), expires_at=now + lifetime, issued_at=now)

"""Where the Dapr sidecar is and how to authenticate to it, from the environment.

:func:`dapr_endpoint` reads ``DAPR_HTTP_ENDPOINT``, else ``DAPR_RUNTIME_HOST``
and ``DAPR_HTTP_PORT``; :func:`resolve_token` picks the API token (an explicit
one, else ``DAPR_API_TOKEN``), sent as the :data:`TOKEN_HEADER` header.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import httpx

from ..auth._secret import SecretLike, reveal
from ..exceptions import ConfigurationError
from ..observe.redact import redact_url

__all__ = ["TOKEN_HEADER", "dapr_endpoint", "resolve_token"]

TOKEN_HEADER = "dapr-api-token"


def dapr_endpoint(environ: Mapping[str, str] | None = None) -> str:
    """The sidecar's HTTP endpoint from the environment.

    ``DAPR_HTTP_ENDPOINT`` when set, else
    ``http://${DAPR_RUNTIME_HOST:-127.0.0.1}:${DAPR_HTTP_PORT:-3500}``.

    Raises:
        ConfigurationError: ``DAPR_HTTP_ENDPOINT`` is not an http(s) URL, or
            ``DAPR_HTTP_PORT`` is not a port number.
    """
    env = os.environ if environ is None else environ
    endpoint = env.get("DAPR_HTTP_ENDPOINT", "").strip()
    if endpoint:
        url = httpx.URL(endpoint)
        if url.scheme not in ("http", "https") or not url.host:
            raise ConfigurationError(
                f"DAPR_HTTP_ENDPOINT must be an http(s) URL such as 'http://127.0.0.1:3500', "
                f"got {redact_url(endpoint)!r}",
                field="DAPR_HTTP_ENDPOINT",
            )
        return endpoint.rstrip("/")
    host = env.get("DAPR_RUNTIME_HOST", "").strip() or "127.0.0.1"
    raw = env.get("DAPR_HTTP_PORT", "").strip() or "3500"
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise ConfigurationError(
            f"DAPR_HTTP_PORT must be a port number 1-65535, got {raw!r}", field="DAPR_HTTP_PORT"
        )
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{int(raw)}"


def resolve_token(api_token: SecretLike | None) -> str | None:
    """``api_token`` revealed, else ``DAPR_API_TOKEN``; ``None`` when empty or unset."""
    if api_token is not None:
        return reveal(api_token) or None
    return os.environ.get("DAPR_API_TOKEN", "").strip() or None

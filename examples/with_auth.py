"""Authentication plugins on AsyncHTTPClient (run: python examples/with_auth.py).

An embedded ChaosServer plays both the API and an OAuth 2.0 token endpoint.
The script shows each plugin seed 001 asks for, and what the server received:

* ``BearerAuth``: a fixed token, or a provider called per request;
* ``APIKeyAuth``: a key in a header (``X-API-KEY``) or in the query string;
* ``BasicAuth``: a user name and password;
* ``OAuth2ClientCredentials``: a token fetched once, cached, and reused by
  every request until it nears expiry;
* ``FallbackAuth``: a primary credential with a fallback when it fails.

Secrets never reach the logs: run with ``-v`` to see the redacted lines.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import sys

from httpx_resilience import (
    APIKeyAuth,
    AsyncHTTPClient,
    BasicAuth,
    BearerAuth,
    FallbackAuth,
    LoggingMiddleware,
    OAuth2ClientCredentials,
)
from httpx_resilience.testing import ChaosServer

TOKEN_BODY = {"access_token": "at-0123456789", "token_type": "Bearer", "expires_in": 3600}


async def main(server: ChaosServer) -> None:
    logging_mw = [LoggingMiddleware()]

    # A fixed bearer token, as most internal APIs take.
    async with AsyncHTTPClient(server.url, auth=BearerAuth("static-token"), middlewares=logging_mw) as client:
        await client.get("/bearer")

    # A provider is asked for the token on every request (here: a rotating one).
    tokens = iter(["rotating-1", "rotating-2"])
    async with AsyncHTTPClient(server.url, auth=BearerAuth(lambda: next(tokens))) as client:
        await client.get("/rotating")
        await client.get("/rotating")

    # An API key in a header (X-API-KEY by default) and in the query string.
    async with AsyncHTTPClient(server.url, auth=APIKeyAuth("key-in-header")) as client:
        await client.get("/api-key")
    async with AsyncHTTPClient(
        server.url, auth=APIKeyAuth("key-in-query", name="api_key", location="query")
    ) as client:
        await client.get("/api-key-query", params={"page": 2})

    # HTTP Basic.
    async with AsyncHTTPClient(server.url, auth=BasicAuth("reporter", "s3cret")) as client:
        await client.get("/basic")

    # OAuth 2.0 client credentials: three requests, one token request.
    oauth = OAuth2ClientCredentials(
        server.url_for("/oauth/token"), client_id="svc-orders", client_secret="cs-secret", scope="orders:read"
    )
    async with AsyncHTTPClient(server.url, auth=oauth) as client:
        for _ in range(3):
            response = await client.get("/orders")
            assert response.status_code == 200

    # A primary credential with a fallback: the token provider fails (its
    # secret store is down), so the API key is sent instead; a WARNING says so.
    def token_from_vault() -> str:
        raise RuntimeError("vault unreachable")

    mixed = FallbackAuth(BearerAuth(token_from_vault), APIKeyAuth("fallback-key"))
    async with AsyncHTTPClient(server.url, auth=mixed) as client:
        await client.get("/mixed")
    print("OAuth2: 3 API calls, token endpoint asked", server.count("/oauth/token"), "time(s)")


def check(server: ChaosServer) -> None:
    """What the server received: each credential where the plugin put it."""
    assert server.requests("/bearer")[0].headers["authorization"] == "Bearer static-token"
    assert [r.headers["authorization"] for r in server.requests("/rotating")] == [
        "Bearer rotating-1",
        "Bearer rotating-2",
    ]
    assert server.requests("/api-key")[0].headers["x-api-key"] == "key-in-header"
    assert server.requests("/api-key-query")[0].query == "page=2&api_key=key-in-query"
    basic = base64.b64encode(b"reporter:s3cret").decode()
    assert server.requests("/basic")[0].headers["authorization"] == f"Basic {basic}"
    token_request = server.requests("/oauth/token")
    assert len(token_request) == 1  # cached: one token for the three calls
    assert b"grant_type=client_credentials" in token_request[0].body
    assert all(r.headers["authorization"] == "Bearer at-0123456789" for r in server.requests("/orders"))
    mixed = server.requests("/mixed")[0].headers
    assert mixed["x-api-key"] == "fallback-key" and "authorization" not in mixed
    print("every credential arrived where its plugin put it")


if __name__ == "__main__":
    if "-v" in sys.argv:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    with ChaosServer() as chaos:
        chaos.route("/oauth/token", body=TOKEN_BODY)
        asyncio.run(main(chaos))
        check(chaos)

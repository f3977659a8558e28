"""Auth plugins against real HTTP servers on loopback (aiohttp.web, OS-assigned ports)."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator

import httpx
import jwt as pyjwt
import pytest

from httpx_resilience.auth import (
    APIKeyAuth,
    AuthHandler,
    BasicAuth,
    BearerAuth,
    FallbackAuth,
    JWTAuth,
    OAuth2ClientCredentials,
    Secret,
    async_strip_foreign_credentials,
)
from httpx_resilience.exceptions import AuthenticationError
from httpx_resilience.testing.clock import FakeClock

from ._auth_apps import (
    CLIENT_ID,
    CLIENT_SECRET,
    JWT_AUDIENCE,
    JWT_KEY,
    AuthServerState,
    EchoState,
    auth_app,
    echo_app,
    start,
)

API_KEY = "ak-41d2-live-api-key-value"
PASSWORD = "pw-correct-horse-battery"
STATIC_TOKEN = "st-static-bearer-token-value"
SECRETS = (CLIENT_SECRET, JWT_KEY, API_KEY, PASSWORD, STATIC_TOKEN)


@pytest.fixture
async def server() -> AsyncIterator[AuthServerState]:
    state = AuthServerState()
    async with start(auth_app(state)) as base:
        state.base_url = base
        yield state


@pytest.fixture
async def other_origin() -> AsyncIterator[EchoState]:
    state = EchoState()
    async with start(echo_app(state)) as base:
        state.base_url = base
        yield state


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def oauth(server: AuthServerState, clock: FakeClock, **kw: object) -> OAuth2ClientCredentials:
    params: dict[str, object] = {"clock": clock, "early_expiry": 30.0}
    params.update(kw)
    return OAuth2ClientCredentials(
        f"{server.base_url}/token",
        str(params.pop("client_id", CLIENT_ID)),
        str(params.pop("client_secret", CLIENT_SECRET)),
        **params,  # type: ignore[arg-type]
    )


def assert_no_secrets(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- OAuth2 client credentials -----------------------------------------------------


async def test_stampede_of_100_requests_makes_one_token_request(
    server: AuthServerState, clock: FakeClock
) -> None:
    """100 concurrent requests through one client share a single token request."""
    server.token_delay = 0.05  # keep the token request in flight while the others arrive
    auth = oauth(server, clock)
    async with httpx.AsyncClient(auth=auth) as client:
        responses = await asyncio.gather(
            *(client.get(f"{server.base_url}/resource") for _ in range(100))
        )
    assert [r.status_code for r in responses] == [200] * 100
    assert server.token_hits == 1
    assert server.resource_hits == 100
    assert {r.json()["token"] for r in responses} == {server.issued[0]}


async def test_token_is_reused_until_expiry_minus_early_expiry_then_refreshed(
    server: AuthServerState, clock: FakeClock
) -> None:
    """A cached token is reused until expires_in - early_expiry, then a new one is fetched."""
    auth = oauth(server, clock)
    async with httpx.AsyncClient(auth=auth) as client:
        first = await client.get(f"{server.base_url}/resource")
        clock.advance(3600 - 30 - 1)
        second = await client.get(f"{server.base_url}/resource")
        assert server.token_hits == 1
        clock.advance(2)
        third = await client.get(f"{server.base_url}/resource")
    assert server.token_hits == 2
    assert first.json()["token"] == second.json()["token"] == server.issued[0]
    assert third.json()["token"] == server.issued[1]


async def test_missing_expires_in_uses_the_documented_default_lifetime(
    server: AuthServerState, clock: FakeClock
) -> None:
    """Without expires_in the token lives default_expires_in (300 s) minus early_expiry."""
    server.expires_in = None
    auth = oauth(server, clock)
    async with httpx.AsyncClient(auth=auth) as client:
        await client.get(f"{server.base_url}/resource")
        clock.advance(300 - 30 - 1)
        await client.get(f"{server.base_url}/resource")
        assert server.token_hits == 1
        clock.advance(2)
        await client.get(f"{server.base_url}/resource")
    assert OAuth2ClientCredentials.DEFAULT_EXPIRES_IN == 300.0
    assert server.token_hits == 2


async def test_401_invalidates_refreshes_once_and_replays_once(
    server: AuthServerState, clock: FakeClock
) -> None:
    """A 401 from the resource fetches a new token and replays the request once."""
    auth = oauth(server, clock)
    async with httpx.AsyncClient(auth=auth) as client:
        await client.get(f"{server.base_url}/resource")
        server.revoked.add(server.issued[0])  # the server forgets the token early
        response = await client.get(f"{server.base_url}/resource")
    assert response.status_code == 200
    assert response.json()["token"] == server.issued[1]
    assert server.token_hits == 2
    assert server.resource_hits == 3
    assert [h.status_code for h in response.history] == [401]


async def test_second_401_is_returned_and_not_looped(
    server: AuthServerState, clock: FakeClock
) -> None:
    """A 401 after the refresh is returned to the caller: one refresh, one replay, no loop."""
    server.reject_next = 5
    auth = oauth(server, clock)
    async with httpx.AsyncClient(auth=auth) as client:
        response = await client.get(f"{server.base_url}/resource")
    assert response.status_code == 401
    assert server.token_hits == 2
    assert server.resource_hits == 2


async def test_invalid_client_raises_authentication_error_with_oauth_code(
    server: AuthServerState, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """invalid_client from the token endpoint is an AuthenticationError with .error and status."""
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-secret-that-the-server-echoes"
    auth = oauth(server, clock, client_secret=wrong)
    async with httpx.AsyncClient(auth=auth) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.get(f"{server.base_url}/resource")
    err = info.value
    assert err.error == "invalid_client"
    assert err.status_code == 401
    assert "invalid_client" in str(err)
    assert "[REDACTED]" in str(err)  # the echoed secret in error_description
    assert wrong not in str(err) and wrong not in caplog.text
    assert server.token_hits == 1  # a refusal is not retried
    assert server.resource_hits == 0
    assert_no_secrets(str(err) + caplog.text)


async def test_transient_503_on_token_endpoint_is_retried_with_backoff(
    server: AuthServerState, clock: FakeClock
) -> None:
    """A 503 from the token endpoint is retried after 0.5 s on the injected clock."""
    server.token_failures = [503]
    auth = oauth(server, clock)
    async with httpx.AsyncClient(auth=auth) as client:
        response = await client.get(f"{server.base_url}/resource")
    assert response.status_code == 200
    assert server.token_hits == 2
    assert clock.sleeps == [0.5]


async def test_token_endpoint_down_gives_up_after_retry_attempts(
    server: AuthServerState, clock: FakeClock
) -> None:
    """Three 5xx/429 answers exhaust the retries: AuthenticationError with the last status."""
    server.token_failures = [503, 429, 502]
    auth = oauth(server, clock)
    async with httpx.AsyncClient(auth=auth) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.get(f"{server.base_url}/resource")
    assert info.value.status_code == 502
    assert info.value.error == "temporarily_unavailable"
    assert clock.sleeps == [0.5, 1.0]
    assert server.token_hits == 3
    assert server.resource_hits == 0


async def test_unreachable_token_endpoint_raises_after_retries(clock: FakeClock) -> None:
    """Connection errors are retried, then raised as AuthenticationError chained to ConnectError."""
    auth = OAuth2ClientCredentials(
        f"http://127.0.0.1:{closed_port()}/token", CLIENT_ID, CLIENT_SECRET, clock=clock
    )
    async with httpx.AsyncClient(auth=auth) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.get("http://127.0.0.1:1/never-sent")
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert "ConnectError" in str(info.value)
    assert clock.sleeps == [0.5, 1.0]


async def test_client_secret_post_sends_credentials_in_the_form(
    server: AuthServerState, clock: FakeClock
) -> None:
    """auth_method='client_secret_post' puts id and secret in the body, with scope and audience."""
    auth = oauth(
        server,
        clock,
        auth_method="client_secret_post",
        scope=["orders:read", "orders:write"],
        audience="orders",
        extra_params={"resource": "urn:orders"},
    )
    async with httpx.AsyncClient(auth=auth) as client:
        response = await client.get(f"{server.base_url}/resource")
    assert response.status_code == 200
    seen = server.token_requests[0]
    assert seen["method"] == "client_secret_post"
    assert seen["form"]["scope"] == "orders:read orders:write"
    assert seen["form"]["audience"] == "orders"
    assert seen["form"]["resource"] == "urn:orders"


async def test_token_response_without_access_token_names_the_field(
    server: AuthServerState, clock: FakeClock
) -> None:
    """A 200 token response without access_token is an AuthenticationError naming the field."""
    server.token_body = {"token_type": "Bearer", "expires_in": 60}
    auth = oauth(server, clock)
    async with httpx.AsyncClient(auth=auth) as client:
        with pytest.raises(AuthenticationError, match="access_token"):
            await client.get(f"{server.base_url}/resource")


async def test_token_response_with_non_numeric_expires_in_names_the_field(
    server: AuthServerState, clock: FakeClock
) -> None:
    """A non-numeric expires_in is an AuthenticationError naming expires_in."""
    server.token_body = {"access_token": "at-x", "expires_in": "soon"}
    auth = oauth(server, clock)
    async with httpx.AsyncClient(auth=auth) as client:
        with pytest.raises(AuthenticationError, match="expires_in"):
            await client.get(f"{server.base_url}/resource")


async def test_token_client_can_be_supplied(server: AuthServerState, clock: FakeClock) -> None:
    """A caller-supplied AsyncClient is used for every token request and never closed."""
    async with httpx.AsyncClient() as token_client:
        auth = oauth(server, clock, client=token_client)
        async with httpx.AsyncClient(auth=auth) as client:
            assert (await client.get(f"{server.base_url}/resource")).status_code == 200
            clock.advance(3600)
            assert (await client.get(f"{server.base_url}/resource")).status_code == 200
        assert not token_client.is_closed
    assert server.token_hits == 2


# -- every plugin under plain httpx -------------------------------------------------


async def _echo(
    server: AuthServerState, auth: httpx.Auth, path: str = "/echo"
) -> dict[str, object]:
    async with httpx.AsyncClient(auth=auth) as client:
        response = await client.get(f"{server.base_url}{path}")
    assert response.status_code == 200, response.text
    return server.seen[-1]


async def test_bearer_static_token_under_plain_httpx(server: AuthServerState) -> None:
    """BearerAuth with a fixed token sends Authorization: Bearer <token>."""
    seen = await _echo(server, BearerAuth(Secret(STATIC_TOKEN)))
    assert seen["headers"]["Authorization"] == f"Bearer {STATIC_TOKEN}"  # type: ignore[index]


async def test_bearer_async_provider_under_plain_httpx(server: AuthServerState) -> None:
    """BearerAuth with an async provider sends the provider's token."""

    async def provider() -> str:
        return STATIC_TOKEN

    seen = await _echo(server, BearerAuth(provider))
    assert seen["headers"]["Authorization"] == f"Bearer {STATIC_TOKEN}"  # type: ignore[index]


async def test_api_key_header_under_plain_httpx(server: AuthServerState) -> None:
    """APIKeyAuth sends X-API-KEY by default."""
    seen = await _echo(server, APIKeyAuth(API_KEY))
    assert seen["headers"]["X-API-KEY"] == API_KEY  # type: ignore[index]


async def test_api_key_query_under_plain_httpx(server: AuthServerState) -> None:
    """APIKeyAuth(location='query') sends the key as a query parameter."""
    seen = await _echo(server, APIKeyAuth(API_KEY, name="api_key", location="query"))
    assert seen["query"] == {"api_key": API_KEY}
    assert "X-API-KEY" not in seen["headers"]  # type: ignore[operator]


async def test_basic_auth_under_plain_httpx(server: AuthServerState) -> None:
    """BasicAuth sends the RFC 7617 header the server can decode."""
    seen = await _echo(server, BasicAuth("alice", PASSWORD))
    expected = httpx.BasicAuth("alice", PASSWORD)._auth_header
    assert seen["headers"]["Authorization"] == expected  # type: ignore[index]


async def test_jwt_is_accepted_and_claims_verify_with_pyjwt(server: AuthServerState) -> None:
    """JWTAuth's token is verified by the server; its claims decode with PyJWT."""
    clock = FakeClock(wall_start=time.time())  # the server checks exp against real time
    auth = JWTAuth(
        Secret(JWT_KEY),
        issuer="cart-service",
        audience=JWT_AUDIENCE,
        subject="svc:cart",
        ttl=120,
        claims={"scope": "orders:read"},
        headers={"kid": "k1"},
        clock=clock,
    )
    async with httpx.AsyncClient(auth=auth) as client:
        response = await client.get(f"{server.base_url}/jwt")
    assert response.status_code == 200
    token = server.seen[-1]["headers"]["Authorization"].removeprefix("Bearer ")
    assert pyjwt.get_unverified_header(token)["kid"] == "k1"
    claims = pyjwt.decode(
        token,
        JWT_KEY,
        algorithms=["HS256"],
        audience=JWT_AUDIENCE,
        issuer="cart-service",
        options={"verify_exp": False, "verify_iat": False},
    )
    now = int(clock.wall())
    assert claims == {
        "iss": "cart-service",
        "aud": JWT_AUDIENCE,
        "sub": "svc:cart",
        "iat": now,
        "exp": now + 120,
        "scope": "orders:read",
    }


async def test_oauth2_under_plain_httpx_sends_bearer(server: AuthServerState) -> None:
    """OAuth2ClientCredentials works as a plain httpx auth with the system clock."""
    auth = OAuth2ClientCredentials(f"{server.base_url}/token", CLIENT_ID, Secret(CLIENT_SECRET))
    seen = await _echo(server, auth)
    assert seen["headers"]["Authorization"] == f"Bearer {server.issued[0]}"  # type: ignore[index]
    assert server.token_requests[0]["method"] == "client_secret_basic"


async def test_sync_client_with_static_credentials(server: AuthServerState) -> None:
    """Static handlers also work under a synchronous httpx.Client."""

    def call() -> httpx.Response:
        with httpx.Client(auth=APIKeyAuth(API_KEY)) as client:
            return client.get(f"{server.base_url}/echo")

    response = await asyncio.to_thread(call)
    assert response.status_code == 200
    assert server.seen[-1]["headers"]["X-API-KEY"] == API_KEY


# -- FallbackAuth -------------------------------------------------------------------


async def test_fallback_uses_api_key_when_jwt_key_is_missing_and_warns_once(
    server: AuthServerState, caplog: pytest.LogCaptureFixture
) -> None:
    """Seed 004: JWT signing fails, the API key is sent instead; one WARNING, no secret."""

    def missing_key() -> str:
        raise FileNotFoundError("/run/secrets/jwt-key")

    auth = FallbackAuth(JWTAuth(missing_key), APIKeyAuth(API_KEY))
    caplog.set_level(logging.DEBUG, logger="httpx_resilience.auth")
    async with httpx.AsyncClient(auth=auth) as client:
        for _ in range(5):
            assert (await client.get(f"{server.base_url}/echo")).status_code == 200
    for seen in server.seen:
        assert seen["headers"]["X-API-KEY"] == API_KEY
        assert "Authorization" not in seen["headers"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].name == "httpx_resilience.auth"
    assert "JWTAuth" in warnings[0].getMessage() and "APIKeyAuth" in warnings[0].getMessage()
    assert_no_secrets(caplog.text)


async def test_fallback_when_token_endpoint_is_down(
    server: AuthServerState, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """OAuth2 primary with its token endpoint down falls back to the API key."""
    server.token_failures = [503, 503, 503]
    auth = FallbackAuth(oauth(server, clock), APIKeyAuth(API_KEY))
    async with httpx.AsyncClient(auth=auth) as client:
        response = await client.get(f"{server.base_url}/echo")
    assert response.status_code == 200
    assert server.seen[-1]["headers"]["X-API-KEY"] == API_KEY
    assert auth.degraded
    assert_no_secrets(caplog.text)


# -- redirects: credentials stay with their origin -----------------------------------


@pytest.mark.parametrize(
    "make_auth",
    [
        lambda s, c: BearerAuth(STATIC_TOKEN),
        lambda s, c: BasicAuth("alice", PASSWORD),
        lambda s, c: JWTAuth(JWT_KEY, clock=c),
        lambda s, c: oauth(s, c),
    ],
    ids=["bearer", "basic", "jwt", "oauth2"],
)
async def test_cross_origin_redirect_strips_authorization(
    server: AuthServerState,
    other_origin: EchoState,
    clock: FakeClock,
    make_auth: object,
) -> None:
    """Following a redirect to another origin drops Authorization and the Cookie header."""
    auth: AuthHandler = make_auth(server, clock)  # type: ignore[operator]
    server.redirect_to = f"{other_origin.base_url}/landing"
    async with httpx.AsyncClient(auth=auth, follow_redirects=True) as client:
        response = await client.get(
            f"{server.base_url}/redirect", headers={"Cookie": "session=s3cr3t"}
        )
    assert response.status_code == 200
    assert "Authorization" in server.seen[-1]["headers"]  # origin A got the credential
    landed = other_origin.seen[-1]["headers"]
    assert "Authorization" not in landed
    assert "Cookie" not in landed


async def test_cross_origin_redirect_with_guard_strips_api_key_and_proxy_auth(
    server: AuthServerState, other_origin: EchoState
) -> None:
    """With the guard hook, X-API-KEY and Proxy-Authorization do not follow to another origin."""
    server.redirect_to = f"{other_origin.base_url}/landing"
    async with httpx.AsyncClient(
        auth=APIKeyAuth(API_KEY),
        follow_redirects=True,
        event_hooks={"request": [async_strip_foreign_credentials]},
    ) as client:
        response = await client.get(
            f"{server.base_url}/redirect", headers={"Proxy-Authorization": "Basic cHJveHk6cHc="}
        )
    assert response.status_code == 200
    assert server.seen[-1]["headers"]["X-API-KEY"] == API_KEY
    landed = other_origin.seen[-1]["headers"]
    assert "X-API-KEY" not in landed
    assert "Proxy-Authorization" not in landed


async def test_cross_origin_redirect_does_not_carry_query_api_key(
    server: AuthServerState, other_origin: EchoState
) -> None:
    """A query-string API key is not sent to the redirect target's origin."""
    server.redirect_to = f"{other_origin.base_url}/landing"
    auth = APIKeyAuth(API_KEY, name="api_key", location="query")
    async with httpx.AsyncClient(
        auth=auth, follow_redirects=True, event_hooks={"request": [async_strip_foreign_credentials]}
    ) as client:
        await client.get(f"{server.base_url}/redirect")
    assert server.seen[-1]["query"] == {"api_key": API_KEY}
    assert other_origin.seen[-1]["query"] == {}


async def test_same_origin_redirect_keeps_credentials(server: AuthServerState) -> None:
    """A redirect within the origin keeps the credential (guard hook included)."""
    server.redirect_to = f"{server.base_url}/echo"
    async with httpx.AsyncClient(
        auth=APIKeyAuth(API_KEY),
        follow_redirects=True,
        event_hooks={"request": [async_strip_foreign_credentials]},
    ) as client:
        response = await client.get(f"{server.base_url}/redirect")
    assert response.status_code == 200
    assert server.seen[-1]["headers"]["X-API-KEY"] == API_KEY


async def test_redirected_request_is_not_reauthenticated_for_the_other_origin(
    server: AuthServerState, other_origin: EchoState, clock: FakeClock
) -> None:
    """A transport re-running prepare_request on a redirected request never re-adds credentials."""
    server.redirect_to = f"{other_origin.base_url}/landing"
    auth = oauth(server, clock)
    async with httpx.AsyncClient(auth=auth) as client:
        first = await client.get(f"{server.base_url}/redirect")
        assert first.next_request is not None
        redirected = first.next_request
        # What a retrying transport does before a retry of the redirected request:
        handler = redirected.extensions["resilience"]["auth"]
        assert handler is auth
        await handler.prepare_request(redirected)
        assert "Authorization" not in redirected.headers
        # And sending next_request by hand (the auth flow runs again) adds nothing either.
        await client.send(redirected)
    assert "Authorization" not in other_origin.seen[-1]["headers"]


# -- secret safety -------------------------------------------------------------------


async def test_secrets_never_appear_in_repr_logs_or_errors(
    server: AuthServerState, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """repr(), str(), our DEBUG logs and error messages of every plugin hide every secret."""
    # httpx's own INFO line logs full URLs (a query API key included): that logger
    # is filtered by the client's logging setup, not by the auth plugins.
    caplog.set_level(logging.DEBUG, logger="httpx_resilience")
    handlers: list[AuthHandler] = [
        BearerAuth(STATIC_TOKEN),
        APIKeyAuth(API_KEY),
        APIKeyAuth(API_KEY, name="api_key", location="query"),
        BasicAuth("alice", PASSWORD),
        JWTAuth(JWT_KEY, clock=clock),
        oauth(server, clock),
        FallbackAuth(JWTAuth(JWT_KEY, clock=clock), APIKeyAuth(API_KEY)),
    ]
    texts = []
    for handler in handlers:
        texts += [repr(handler), str(handler)]
        async with httpx.AsyncClient(auth=handler) as client:
            await client.get(f"{server.base_url}/echo")
    server.token_failures = [500, 500, 500]
    failing = oauth(server, clock, client_secret=CLIENT_SECRET + "-x")
    async with httpx.AsyncClient(auth=failing) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.get(f"{server.base_url}/echo")
    texts += [str(info.value), repr(info.value), caplog.text]
    issued = server.issued
    for text in texts:
        assert_no_secrets(text)
        for token in issued:
            assert token not in text


# -- a token endpoint that echoes the client secret in every encoding --------------------------

ECHO_SECRET = 's/e+c r3t&="é-echo-secret'


def _secret_forms(client_id: str, secret: str) -> list[str]:
    """Every way the secret went out or can come back."""
    import base64
    import json
    from urllib.parse import quote, quote_plus

    pairs = (f"{client_id}:{secret}", f"{quote_plus(client_id)}:{quote_plus(secret)}")
    basic = [base64.b64encode(p.encode()).decode() for p in pairs]
    return [
        secret, quote(secret), quote(secret, safe=""), quote_plus(secret),
        quote_plus(secret).lower(), json.dumps(secret)[1:-1], *basic,
        *(b.rstrip("=") for b in basic),
    ]


@pytest.mark.parametrize("kind", ["httpx", "native", "aiohttp"])
@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post"])
async def test_an_endpoint_echoing_the_client_secret_in_any_encoding_shows_nothing(
    server: AuthServerState, clock: FakeClock, caplog: pytest.LogCaptureFixture,
    kind: str, auth_method: str,
) -> None:
    """The token endpoint answers 401 quoting the form body (client_secret=s%2Fe%2Bc...), the
    Basic header (base64 of id:secret), the secret JSON-escaped and percent-encoded both ways:
    the error, its chain and every log line show none of them."""
    import traceback

    from httpx_resilience import AsyncHTTPClient, LoggingMiddleware
    from httpx_resilience.transports import make_transport

    caplog.set_level(logging.DEBUG)
    server.echo_refusals = True
    inner = make_transport(kind)  # type: ignore[arg-type]
    auth = oauth(
        server, clock, client_secret=ECHO_SECRET, auth_method=auth_method, transport=inner,
        retry_attempts=1,
    )
    errors: list[BaseException] = []
    async with httpx.AsyncClient(auth=auth, transport=make_transport(kind)) as client:  # type: ignore[arg-type]
        with pytest.raises(AuthenticationError) as info:
            await client.get(f"{server.base_url}/resource")
        errors.append(info.value)
    async with AsyncHTTPClient(
        server.base_url, auth=auth, transport=kind, middlewares=[LoggingMiddleware()],  # type: ignore[arg-type]
    ) as api:
        with pytest.raises(AuthenticationError) as info:
            await api.get("/resource")
        errors.append(info.value)
    await inner.aclose()
    assert server.token_hits == 2
    sent = server.token_requests[0]
    assert sent["method"] == auth_method  # the secret really went out in that form
    texts = [r.getMessage() for r in caplog.records] + [repr(vars(r)) for r in caplog.records]
    for err in errors:
        texts += ["".join(traceback.format_exception(err)), str(err), repr(err)]
        assert isinstance(err, AuthenticationError) and err.status_code == 401
        assert "[REDACTED]" in str(err) and "refused body=" in str(err)
    blob = "\n".join(texts)
    leaks = [form for form in _secret_forms(CLIENT_ID, ECHO_SECRET) if form in blob]
    assert not leaks, leaks

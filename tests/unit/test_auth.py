"""Unit tests of the auth plugins (httpx.MockTransport; no network)."""

from __future__ import annotations

import asyncio
import base64
import logging
import pickle
import sys
import warnings
from collections.abc import Callable
from typing import Any
from unittest import mock

import httpx
import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

import httpx_resilience.auth as auth_pkg
from httpx_resilience.auth import (
    APIKeyAuth,
    AuthHandler,
    BasicAuth,
    BearerAuth,
    CachedToken,
    FallbackAuth,
    InMemoryTokenCache,
    JWTAuth,
    OAuth2ClientCredentials,
    Secret,
    TokenCache,
    strip_foreign_credentials,
)
from httpx_resilience.auth._secret import is_secret_like, reveal
from httpx_resilience.auth.base import origin_of
from httpx_resilience.auth.cache import token_fingerprint
from httpx_resilience.exceptions import AuthenticationError, ConfigurationError
from httpx_resilience.testing.clock import FakeClock

SECRET = "cs-unit-secret-0000-1111"
TOKEN_URL = "https://login.test/oauth/token"
HMAC_KEY = "unit-hmac-key-0123456789abcdef0123456789"

Handler = Callable[[httpx.Request], httpx.Response]


class TokenEndpoint:
    """A scripted token endpoint + resource for MockTransport."""

    def __init__(self, *responses: httpx.Response | Exception) -> None:
        self.script = list(responses)
        self.token_requests: list[httpx.Request] = []
        self.resource_requests: list[httpx.Request] = []
        self.counter = 0
        self.resource_status: list[int] = []
        self.revoked: set[str] = set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            self.token_requests.append(request)
            if self.script:
                item = self.script.pop(0)
                if isinstance(item, Exception):
                    raise item
                return item
            self.counter += 1
            return httpx.Response(
                200, json={"access_token": f"tok{self.counter}", "expires_in": 60}
            )
        self.resource_requests.append(request)
        status = self.resource_status.pop(0) if self.resource_status else 200
        if request.headers.get("Authorization", "").removeprefix("Bearer ") in self.revoked:
            status = 401
        return httpx.Response(status, json={"auth": request.headers.get("Authorization")})


def make_oauth(
    endpoint: Handler, clock: FakeClock | None = None, **kw: Any
) -> OAuth2ClientCredentials:
    return OAuth2ClientCredentials(
        TOKEN_URL,
        "cid",
        SECRET,
        transport=httpx.MockTransport(endpoint),
        clock=clock or FakeClock(),
        **kw,
    )


def echo(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"headers": dict(request.headers), "url": str(request.url)})


# -- package surface ------------------------------------------------------------------


def test_all_is_sorted_and_complete() -> None:
    """auth.__all__ is sorted and every name in it exists."""
    assert auth_pkg.__all__ == sorted(auth_pkg.__all__)
    for name in auth_pkg.__all__:
        assert hasattr(auth_pkg, name)


def test_per_attempt_flags_match_the_documentation() -> None:
    """Time-based handlers are per attempt; static ones are not."""
    assert not BearerAuth("t").per_attempt
    assert BearerAuth(lambda: "t").per_attempt
    assert not APIKeyAuth("k").per_attempt
    assert not BasicAuth("u", "p").per_attempt
    assert make_oauth(echo).per_attempt
    assert JWTAuth(HMAC_KEY).per_attempt
    assert FallbackAuth(JWTAuth(HMAC_KEY), APIKeyAuth("k")).per_attempt
    assert not FallbackAuth(BasicAuth("u", "p"), APIKeyAuth("k")).per_attempt


# -- Secret -----------------------------------------------------------------------------


def test_secret_never_shows_its_value() -> None:
    """repr, str and f-strings of a Secret are masked; get_secret_value reveals it."""
    s = Secret("hunter2")
    assert "hunter2" not in repr(s) + str(s) + f"{s}" + f"{s!r}"
    assert s.get_secret_value() == "hunter2"
    assert bool(s) and not Secret("")


def test_secret_equality_hash_pickle_and_unwrapping() -> None:
    """Secrets compare by value, hash, pickle round-trip and unwrap secret-likes."""
    assert Secret("a") == Secret("a") and Secret("a") != Secret("b")
    assert Secret("a") != "a"
    assert len({Secret("a"), Secret("a")}) == 1
    assert pickle.loads(pickle.dumps(Secret("v"))).get_secret_value() == "v"
    assert Secret(Secret("x")).get_secret_value() == "x"
    assert is_secret_like("x") and is_secret_like(Secret("x")) and not is_secret_like(3)
    assert reveal(Secret("y")) == "y" and reveal("z") == "z"


def test_secret_accepts_pydantic_secretstr_and_rejects_other_types() -> None:
    """pydantic SecretStr is unwrapped; a non-string raises TypeError."""
    from pydantic import SecretStr

    assert Secret(SecretStr("p")).get_secret_value() == "p"
    with pytest.raises(TypeError):
        Secret(42)  # type: ignore[arg-type]

    class Bad:
        def get_secret_value(self) -> object:
            return 1

    with pytest.raises(TypeError):
        Secret(Bad())  # type: ignore[arg-type]


# -- token cache --------------------------------------------------------------------------


def test_cached_token_round_trips_and_hides_the_token() -> None:
    """CachedToken serialises with to_dict/from_dict and its repr hides the token."""
    token = CachedToken(Secret("abc"), expires_at=10.0, issued_at=5.0)
    assert "abc" not in repr(token)
    again = CachedToken.from_dict(token.to_dict())
    assert again == token and again.fingerprint == token_fingerprint("abc")
    with pytest.raises(TypeError):
        CachedToken.from_dict({"access_token": 1, "expires_at": 2})
    with pytest.raises(KeyError):
        CachedToken.from_dict({"expires_at": 2})


async def test_memory_cache_ttl_and_compare_and_delete() -> None:
    """The in-memory cache honours TTLs and deletes only the token with the given fingerprint."""
    clock = FakeClock()
    cache = InMemoryTokenCache(clock=clock)
    assert isinstance(cache, TokenCache)
    t1 = CachedToken(Secret("t1"), expires_at=0.0)
    await cache.set("k", t1, 10)
    assert await cache.get("k") == t1 and len(cache) == 1
    assert not await cache.delete("k", fingerprint=token_fingerprint("other"))
    assert await cache.delete("k", fingerprint=t1.fingerprint)
    assert not await cache.delete("k")
    await cache.set("k", t1, 10)
    clock.advance(10)
    assert await cache.get("k") is None
    await cache.set("k", t1, 0)
    assert await cache.get("k") is None
    await cache.set("k", t1, 5)
    assert await cache.delete("k")
    assert "entries=0" in repr(cache)


async def test_memory_cache_lock_serialises_holders() -> None:
    """lock(key) lets one holder in at a time."""
    cache = InMemoryTokenCache()
    inside = 0
    peak = 0

    async def hold() -> None:
        nonlocal inside, peak
        async with cache.lock("k"):
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(0)
            inside -= 1

    await asyncio.gather(*(hold() for _ in range(10)))
    assert peak == 1


# -- base: extension contract, origins, flows ---------------------------------------


def test_origin_of_makes_default_ports_explicit() -> None:
    """origin_of gives scheme://host:port with the default port filled in."""
    assert origin_of(httpx.URL("https://a.test/x")) == "https://a.test:443"
    assert origin_of(httpx.URL("http://a.test:8080/")) == "http://a.test:8080"


async def test_auth_flow_sets_the_resilience_extension_for_the_transport() -> None:
    """The flow stores the handler and origin under extensions['resilience'], keeping other keys."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    auth = BearerAuth("t")
    async with httpx.AsyncClient(auth=auth, transport=httpx.MockTransport(handler)) as client:
        await client.get(
            "https://api.test/x", extensions={"resilience": {"attempts": 2}, "other": 1}
        )
    ext = seen[0].extensions
    assert ext["resilience"] == {"attempts": 2, "auth": auth, "auth_origin": "https://api.test:443"}
    assert ext["other"] == 1


async def test_retrying_transport_contract_reapplies_a_fresh_token_per_attempt() -> None:
    """A transport that re-calls prepare_request before a retry sends the refreshed token."""
    clock = FakeClock()
    endpoint = TokenEndpoint()
    auth = make_oauth(endpoint, clock)
    sent: list[str] = []

    class RetryingTransport(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            sent.append(request.headers["Authorization"])
            clock.advance(60)  # the first attempt fails slowly: the token expires meanwhile
            handler = request.extensions["resilience"]["auth"]
            if handler.per_attempt:
                await handler.prepare_request(request)
            sent.append(request.headers["Authorization"])
            return httpx.Response(200)

    async with httpx.AsyncClient(auth=auth, transport=RetryingTransport()) as client:
        await client.get("https://api.test/x")
    assert sent == ["Bearer tok1", "Bearer tok2"]
    assert len(endpoint.token_requests) == 2


async def test_prepare_request_is_idempotent() -> None:
    """Running prepare_request twice overwrites; it never appends a second credential."""
    request = httpx.Request("GET", "https://api.test/x?a=1")
    for handler in (
        BearerAuth("t"),
        BasicAuth("u", "p"),
        APIKeyAuth("k"),
        APIKeyAuth("k", name="key", location="query"),
        JWTAuth(HMAC_KEY),
    ):
        await handler.prepare_request(request)
        await handler.prepare_request(request)
    assert len(request.headers.get_list("Authorization")) == 1
    assert len(request.headers.get_list("X-API-KEY")) == 1
    assert request.url.params.get_list("key") == ["k"]


async def test_foreign_origin_request_gets_credentials_removed() -> None:
    """A request whose recorded origin differs is stripped by every handler, not authenticated."""
    handlers: list[AuthHandler] = [
        BearerAuth("t"),
        BearerAuth(lambda: "t"),
        BasicAuth("u", "p"),
        APIKeyAuth("k"),
        APIKeyAuth("k", name="key", location="query"),
        JWTAuth(HMAC_KEY),
        make_oauth(TokenEndpoint()),
        FallbackAuth(JWTAuth(HMAC_KEY), APIKeyAuth("k")),
    ]
    for handler in handlers:
        request = httpx.Request(
            "GET",
            "https://evil.test/x?key=k",
            headers={"Authorization": "x", "X-API-KEY": "k"},
            extensions={"resilience": {"auth_origin": "https://api.test:443"}},
        )
        assert handler.is_foreign(request)
        await handler.prepare_request(request)
        if type(handler).sync_prepare_request is not AuthHandler.sync_prepare_request:
            handler.sync_prepare_request(request)
        assert "Authorization" not in request.headers or isinstance(handler, APIKeyAuth)
        for name in handler.sensitive_headers:
            assert name not in request.headers
        for name in handler.sensitive_query_params:
            assert name not in request.url.params


def test_https_upgrade_on_the_same_host_is_not_foreign() -> None:
    """http -> https on the same host keeps credentials, as httpx does."""
    auth = BearerAuth("t")
    up = httpx.Request(
        "GET", "https://a.test/", extensions={"resilience": {"auth_origin": "http://a.test:80"}}
    )
    assert not auth.is_foreign(up)
    other = httpx.Request(
        "GET", "https://b.test/", extensions={"resilience": {"auth_origin": "http://a.test:80"}}
    )
    assert auth.is_foreign(other)
    plain = httpx.Request("GET", "https://b.test/", extensions={"resilience": "junk"})
    assert not auth.is_foreign(plain)


def test_sync_guard_hook_strips_foreign_credentials_on_redirect() -> None:
    """strip_foreign_credentials removes the API key header when a redirect changes origin."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "a.test":
            return httpx.Response(302, headers={"Location": "https://b.test/landing"})
        return httpx.Response(200)

    with httpx.Client(
        auth=APIKeyAuth("k"),
        transport=httpx.MockTransport(handler),
        follow_redirects=True,
        event_hooks={"request": [strip_foreign_credentials]},
    ) as client:
        client.get("https://a.test/start", headers={"Proxy-Authorization": "p"})
    assert seen[0].headers["X-API-KEY"] == "k"
    assert "X-API-KEY" not in seen[1].headers
    assert "Proxy-Authorization" not in seen[1].headers


async def test_401_on_a_streamed_body_is_not_replayed() -> None:
    """A request whose streaming body was consumed is not replayed after a 401."""
    endpoint = TokenEndpoint()
    sent = 0

    class StreamingTransport(httpx.AsyncBaseTransport):
        # Like a real transport (and unlike MockTransport) it consumes the stream
        # without keeping the bytes, so the body cannot be sent again.
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            nonlocal sent
            if request.url.host == "login.test":
                await request.aread()
                return endpoint(request)
            sent += 1
            async for _ in request.stream:  # type: ignore[union-attr]
                pass
            return httpx.Response(401)

    async def body() -> Any:
        yield b"chunk"

    auth = make_oauth(endpoint)
    async with httpx.AsyncClient(auth=auth, transport=StreamingTransport()) as client:
        response = await client.post("https://api.test/upload", content=body())
    assert response.status_code == 401
    assert sent == 1
    assert len(endpoint.token_requests) == 1


async def test_401_from_another_origin_after_redirect_does_not_refresh() -> None:
    """A 401 that came from a redirect target on another origin does not refresh our token."""
    endpoint = TokenEndpoint()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "login.test":
            return endpoint(request)
        if request.url.host == "a.test":
            return httpx.Response(302, headers={"Location": "https://b.test/"})
        return httpx.Response(401)

    auth = make_oauth(endpoint)
    async with httpx.AsyncClient(
        auth=auth, transport=httpx.MockTransport(handler), follow_redirects=True
    ) as client:
        response = await client.get("https://a.test/")
    assert response.status_code == 401
    assert len(endpoint.token_requests) == 1


async def test_401_is_not_retried_by_static_handlers() -> None:
    """A static handler returns the 401 as is: nothing to refresh."""
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(401)

    async with httpx.AsyncClient(auth=BearerAuth("t"), transport=httpx.MockTransport(handler)) as c:
        assert (await c.get("https://api.test/")).status_code == 401
    assert calls == 1


def test_custom_handler_defaults() -> None:
    """A minimal subclass gets the default strip, redaction names and a sync refusal."""

    class Custom(AuthHandler):
        async def prepare_request(self, request: httpx.Request) -> httpx.Request:
            request.headers["Authorization"] = "Custom x"
            return request

    handler = Custom()
    request = httpx.Request("GET", "https://a.test/", headers={"Authorization": "x"})
    handler.strip_credentials(request)
    assert "Authorization" not in request.headers
    assert handler.sensitive_headers == {"authorization"}
    assert handler.sensitive_query_params == frozenset()
    asyncio.run(handler.invalidate(request))
    with (
        pytest.raises(AuthenticationError, match="AsyncClient"),
        httpx.Client(auth=handler) as client,
    ):
        client.get("https://a.test/")


# -- BearerAuth -------------------------------------------------------------------------


async def test_bearer_sync_and_async_providers_are_called_per_request() -> None:
    """A provider is called for every request and its current token is sent."""
    tokens = iter(["one", "two"])

    async def provider() -> Secret:
        return Secret(next(tokens))

    async with httpx.AsyncClient(
        auth=BearerAuth(provider), transport=httpx.MockTransport(echo)
    ) as c:
        first = (await c.get("https://api.test/")).json()["headers"]["authorization"]
        second = (await c.get("https://api.test/")).json()["headers"]["authorization"]
    assert (first, second) == ("Bearer one", "Bearer two")


def test_bearer_sync_provider_works_under_the_sync_client() -> None:
    """A synchronous provider also serves httpx.Client."""
    auth = BearerAuth(lambda: "sync")
    with httpx.Client(auth=auth, transport=httpx.MockTransport(echo)) as client:
        assert client.get("https://api.test/").json()["headers"]["authorization"] == "Bearer sync"


async def test_bearer_provider_failures_are_authentication_errors_without_their_message() -> None:
    """A provider that raises or returns junk gives AuthenticationError that does not quote it."""

    def boom() -> str:
        raise RuntimeError("token=leaky-value")

    async def aboom() -> str:
        raise RuntimeError("token=leaky-value")

    request = httpx.Request("GET", "https://api.test/")
    for provider in (boom, aboom):
        with pytest.raises(AuthenticationError) as info:
            await BearerAuth(provider).prepare_request(request)
        assert "leaky-value" not in str(info.value)
        assert "RuntimeError" in str(info.value)
    with pytest.raises(AuthenticationError, match="int"):
        await BearerAuth(lambda: 3).prepare_request(request)  # type: ignore[arg-type,return-value]
    with pytest.raises(AuthenticationError, match="empty"):
        await BearerAuth(lambda: "").prepare_request(request)


def test_bearer_async_provider_under_sync_client_is_refused_cleanly() -> None:
    """An async provider under httpx.Client raises AuthenticationError and leaves no coroutine."""

    async def provider() -> str:
        return "t"

    with (
        warnings.catch_warnings(),
        httpx.Client(auth=BearerAuth(provider), transport=httpx.MockTransport(echo)) as client,
        pytest.raises(AuthenticationError, match="AsyncClient"),
    ):
        warnings.simplefilter("error")
        client.get("https://api.test/")


def test_bearer_configuration_errors_name_the_field() -> None:
    """Bad tokens raise ConfigurationError(field='token') without quoting the token."""
    for bad in ("", " padded ", "line\nbreak", 3):
        with pytest.raises(ConfigurationError) as info:
            BearerAuth(bad)  # type: ignore[arg-type]
        assert info.value.field == "token"
    assert "s3cret" not in repr(BearerAuth("s3cret"))
    assert "provider" in repr(BearerAuth(lambda: "s3cret"))


# -- APIKeyAuth / BasicAuth ------------------------------------------------------------------


def test_api_key_configuration_errors_name_the_field() -> None:
    """Bad key, name or location raise ConfigurationError naming the field."""
    cases: list[tuple[dict[str, Any], str]] = [
        ({"key": ""}, "key"),
        ({"key": "a\nb"}, "key"),
        ({"key": 5}, "key"),
        ({"key": "k", "name": ""}, "name"),
        ({"key": "k", "location": "cookie"}, "location"),
    ]
    for kwargs, field in cases:
        with pytest.raises(ConfigurationError) as info:
            APIKeyAuth(**kwargs)
        assert info.value.field == field
    assert APIKeyAuth("é-key", name="k", location="query").sensitive_query_params == {"k"}
    assert APIKeyAuth("k", name="X-Key").sensitive_headers == {"x-key"}
    assert "k3y" not in repr(APIKeyAuth("k3y"))


def test_api_key_query_strip_removes_only_the_key() -> None:
    """strip_credentials drops the key parameter and keeps the others."""
    auth = APIKeyAuth("k", name="key", location="query")
    request = httpx.Request("GET", "https://a.test/?key=k&x=1")
    auth.strip_credentials(request)
    assert dict(request.url.params) == {"x": "1"}
    auth.strip_credentials(request)  # nothing left to remove
    assert dict(request.url.params) == {"x": "1"}


def test_basic_auth_header_and_errors() -> None:
    """BasicAuth encodes UTF-8 user:password and rejects a ':' in the username."""
    request = BasicAuth("zoë", Secret("pä:ss")).sync_prepare_request(
        httpx.Request("GET", "https://a.test/")
    )
    raw = base64.b64decode(request.headers["Authorization"].removeprefix("Basic ")).decode()
    assert raw == "zoë:pä:ss"
    with pytest.raises(ConfigurationError) as info:
        BasicAuth("a:b", "p")
    assert info.value.field == "username"
    with pytest.raises(ConfigurationError) as info:
        BasicAuth("a", None)  # type: ignore[arg-type]
    assert info.value.field == "password"
    assert "pä:ss" not in repr(BasicAuth("zoë", "pä:ss"))


# -- OAuth2ClientCredentials ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"token_url": "ftp://login.test/token"}, "token_url"),
        ({"token_url": "/relative"}, "token_url"),
        ({"token_url": 12}, "token_url"),
        ({"token_url": "https://a.test:x/"}, "token_url"),
        ({"token_url": "https:///no-host"}, "token_url"),
        ({"client_id": ""}, "client_id"),
        ({"client_id": None}, "client_id"),
        ({"client_secret": ""}, "client_secret"),
        ({"client_secret": None}, "client_secret"),
        ({"auth_method": "private_key_jwt"}, "auth_method"),
        ({"early_expiry": -1}, "early_expiry"),
        ({"early_expiry": True}, "early_expiry"),
        ({"timeout": 0}, "timeout"),
        ({"retry_attempts": 0}, "retry_attempts"),
        ({"retry_attempts": 1.5}, "retry_attempts"),
        ({"retry_backoff": float("nan")}, "retry_backoff"),
        ({"default_expires_in": 0}, "default_expires_in"),
        ({"scope": [""]}, "scope"),
        ({"scope": 5}, "scope"),
        ({"audience": ""}, "audience"),
        ({"extra_params": {"grant_type": "x"}}, "extra_params"),
        ({"extra_params": {"a": 1}}, "extra_params"),
        ({"client": object()}, "client"),
        (
            {
                "client": mock.create_autospec(httpx.AsyncClient, instance=True),
                "transport": httpx.MockTransport(echo),
            },
            "transport",
        ),
        ({"cache": object()}, "cache"),
    ],
)
def test_oauth2_configuration_errors_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    """Each invalid argument raises ConfigurationError (a ValueError) naming it."""
    params: dict[str, Any] = {"token_url": TOKEN_URL, "client_id": "cid", "client_secret": SECRET}
    params.update(kwargs)
    with pytest.raises(ConfigurationError) as info:
        OAuth2ClientCredentials(**params)
    assert info.value.field == field
    assert isinstance(info.value, ValueError)
    assert SECRET not in str(info.value)


def test_oauth2_repr_redacts_and_url_userinfo_is_hidden() -> None:
    """repr shows url, client_id and scope but never the secret or URL user-info."""
    auth = OAuth2ClientCredentials(
        "https://user:pw@login.test/token", "cid", SECRET, scope="a b", cache=InMemoryTokenCache()
    )
    text = repr(auth)
    assert SECRET not in text and "pw" not in text and "cid" in text and "a b" in text
    assert auth.scope == "a b"
    assert OAuth2ClientCredentials(TOKEN_URL, "c", SECRET, scope=" ").scope is None


async def test_oauth2_basic_client_auth_form_encodes_id_and_secret() -> None:
    """client_secret_basic form-urlencodes id and secret before Base64 (RFC 6749 §2.3.1)."""
    endpoint = TokenEndpoint()
    auth = OAuth2ClientCredentials(
        TOKEN_URL, "id:with space", "s&c=r t", transport=httpx.MockTransport(endpoint)
    )
    await auth.prepare_request(httpx.Request("GET", "https://api.test/"))
    header = endpoint.token_requests[0].headers["Authorization"]
    assert base64.b64decode(header.removeprefix("Basic ")).decode() == "id%3Awith+space:s%26c%3Dr+t"
    body = endpoint.token_requests[0].content.decode()
    assert body == "grant_type=client_credentials"


async def test_oauth2_never_closes_a_supplied_transport() -> None:
    """The short-lived token clients borrow the caller's transport without closing it."""

    class Tracking(httpx.MockTransport):
        closed = False

        async def aclose(self) -> None:
            Tracking.closed = True

    clock = FakeClock()
    endpoint = TokenEndpoint()
    auth = OAuth2ClientCredentials(
        TOKEN_URL, "cid", SECRET, transport=Tracking(endpoint), clock=clock
    )
    await auth.prepare_request(httpx.Request("GET", "https://api.test/"))
    clock.advance(60)
    await auth.prepare_request(httpx.Request("GET", "https://api.test/"))
    assert len(endpoint.token_requests) == 2
    assert not Tracking.closed


@pytest.mark.parametrize(
    ("response", "match"),
    [
        (httpx.Response(200, json={"expires_in": 10}), "access_token"),
        (httpx.Response(200, json={"access_token": 5}), "access_token"),
        (httpx.Response(200, json={"access_token": "a b\n"}), "access_token"),
        (httpx.Response(200, json={"access_token": "a", "expires_in": "soon"}), "expires_in"),
        (httpx.Response(200, json={"access_token": "a", "expires_in": -5}), "expires_in"),
        (httpx.Response(200, json={"access_token": "a", "expires_in": True}), "expires_in"),
        (httpx.Response(200, json={"access_token": "a", "expires_in": [1]}), "expires_in"),
        (httpx.Response(200, text="<html>"), "not a JSON object"),
        (httpx.Response(200, json=["a"]), "not a JSON object"),
    ],
)
async def test_oauth2_bad_token_responses_name_the_field(
    response: httpx.Response, match: str
) -> None:
    """Unusable 2xx token responses raise AuthenticationError saying what is wrong."""
    auth = make_oauth(TokenEndpoint(response))
    with pytest.raises(AuthenticationError, match=match):
        await auth.prepare_request(httpx.Request("GET", "https://api.test/"))


async def test_oauth2_numeric_string_expires_in_is_accepted() -> None:
    """expires_in sent as a numeric string is accepted (some servers do that)."""
    clock = FakeClock()
    endpoint = TokenEndpoint(httpx.Response(200, json={"access_token": "a", "expires_in": "120"}))
    auth = make_oauth(endpoint, clock)
    await auth.prepare_request(httpx.Request("GET", "https://api.test/"))
    clock.advance(120 - 30 - 1)
    await auth.prepare_request(httpx.Request("GET", "https://api.test/"))
    assert len(endpoint.token_requests) == 1


async def test_oauth2_short_lived_token_refreshes_at_half_life() -> None:
    """A token shorter than 2*early_expiry is reused for half its lifetime, not refetched each time."""
    clock = FakeClock()
    endpoint = TokenEndpoint(httpx.Response(200, json={"access_token": "a", "expires_in": 20}))
    auth = make_oauth(endpoint, clock)
    for _ in range(3):
        await auth.prepare_request(httpx.Request("GET", "https://api.test/"))
    assert len(endpoint.token_requests) == 1
    clock.advance(10)
    await auth.prepare_request(httpx.Request("GET", "https://api.test/"))
    assert len(endpoint.token_requests) == 2


async def test_oauth2_refusals_carry_code_status_and_redacted_description() -> None:
    """A 400 refusal maps the OAuth error and redacts secrets and e-mails from the description."""
    body = {
        "error": "invalid_scope",
        "error_description": f"scope denied for ops@example.com using {SECRET} " + "x" * 300,
    }
    auth = make_oauth(TokenEndpoint(httpx.Response(400, json=body)))
    with pytest.raises(AuthenticationError) as info:
        await auth.prepare_request(httpx.Request("GET", "https://api.test/"))
    text = str(info.value)
    assert info.value.error == "invalid_scope" and info.value.status_code == 400
    assert SECRET not in text and "ops@example.com" not in text
    assert "Check the requested scope" in text
    assert "POST https://login.test/oauth/token" in text
    assert len(text) < 500


async def test_oauth2_malformed_error_bodies_are_reported_without_a_code() -> None:
    """Error bodies that are not JSON objects or carry invalid codes give error=None."""
    for response in (
        httpx.Response(403, text="Forbidden"),
        httpx.Response(403, json=["x"]),
        httpx.Response(403, json={"error": "bad\ncode", "error_description": 5}),
    ):
        auth = make_oauth(TokenEndpoint(response))
        with pytest.raises(AuthenticationError) as info:
            await auth.prepare_request(httpx.Request("GET", "https://api.test/"))
        assert info.value.error is None and info.value.status_code == 403


async def test_oauth2_transport_errors_and_429_are_retried_then_succeed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A timeout and a 429 are retried with 0.5 s then 1 s backoff before a token arrives."""
    caplog.set_level(logging.WARNING, logger="httpx_resilience.auth")
    clock = FakeClock()
    endpoint = TokenEndpoint(httpx.ReadTimeout("slow"), httpx.Response(429))
    auth = make_oauth(endpoint, clock)
    request = await auth.prepare_request(httpx.Request("GET", "https://api.test/"))
    assert request.headers["Authorization"] == "Bearer tok1"
    assert clock.sleeps == [0.5, 1.0]
    assert "ReadTimeout" in caplog.text and "HTTP 429" in caplog.text
    assert SECRET not in caplog.text


async def test_oauth2_retry_attempts_one_does_not_retry() -> None:
    """retry_attempts=1 makes a single token request and reports the failure."""
    clock = FakeClock()
    endpoint = TokenEndpoint(httpx.Response(500, text="oops"))
    auth = make_oauth(endpoint, clock, retry_attempts=1)
    with pytest.raises(AuthenticationError, match="after 1 attempt") as info:
        await auth.prepare_request(httpx.Request("GET", "https://api.test/"))
    assert info.value.status_code == 500 and info.value.error is None
    assert clock.sleeps == [] and len(endpoint.token_requests) == 1


async def test_oauth2_waiters_share_one_failure() -> None:
    """Concurrent callers waiting on a failing fetch all get its error from one token request."""
    endpoint = TokenEndpoint(httpx.Response(401, json={"error": "invalid_client"}))
    auth = make_oauth(endpoint)
    results = await asyncio.gather(
        *(auth.prepare_request(httpx.Request("GET", "https://api.test/")) for _ in range(10)),
        return_exceptions=True,
    )
    assert all(isinstance(r, AuthenticationError) for r in results)
    assert len(endpoint.token_requests) == 1


async def test_oauth2_cancelled_caller_does_not_cancel_the_shared_fetch() -> None:
    """Cancelling one waiter leaves the single-flight fetch running for the others."""
    gate = asyncio.Event()

    class SlowTransport(httpx.AsyncBaseTransport):
        calls = 0

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            SlowTransport.calls += 1
            await gate.wait()
            return httpx.Response(200, json={"access_token": "slow", "expires_in": 60})

    auth = OAuth2ClientCredentials(TOKEN_URL, "cid", SECRET, transport=SlowTransport())
    first = asyncio.ensure_future(auth.prepare_request(httpx.Request("GET", "https://a.test/")))
    second = asyncio.ensure_future(auth.prepare_request(httpx.Request("GET", "https://a.test/")))
    await asyncio.sleep(0.01)
    first.cancel()
    gate.set()
    request = await second
    assert request.headers["Authorization"] == "Bearer slow"
    assert first.cancelled() and SlowTransport.calls == 1


async def test_oauth2_shared_cache_gives_two_handlers_one_token() -> None:
    """Two handlers with the same client and one cache share the token."""
    endpoint = TokenEndpoint()
    cache = InMemoryTokenCache()
    a = make_oauth(endpoint, cache=cache)
    b = make_oauth(endpoint, cache=cache)
    assert a.cache_key == b.cache_key
    await a.prepare_request(httpx.Request("GET", "https://api.test/"))
    await b.prepare_request(httpx.Request("GET", "https://api.test/"))
    assert len(endpoint.token_requests) == 1
    assert make_oauth(endpoint, scope="other").cache_key != a.cache_key


async def test_oauth2_handlers_sharing_a_cache_single_flight_through_its_lock() -> None:
    """Concurrent handlers on one cache make one token request: the lock holder's token is reused."""
    endpoint = TokenEndpoint()
    cache = InMemoryTokenCache()
    handlers = [make_oauth(endpoint, cache=cache) for _ in range(5)]
    requests = await asyncio.gather(
        *(h.prepare_request(httpx.Request("GET", "https://api.test/")) for h in handlers)
    )
    assert {r.headers["Authorization"] for r in requests} == {"Bearer tok1"}
    assert len(endpoint.token_requests) == 1


async def test_oauth2_invalidate_drops_only_the_refused_token() -> None:
    """invalidate() removes the cached token only if the request carried that token."""
    endpoint = TokenEndpoint()
    auth = make_oauth(endpoint)
    stale = httpx.Request("GET", "https://api.test/", headers={"Authorization": "Bearer old"})
    await auth.prepare_request(httpx.Request("GET", "https://api.test/"))
    await auth.invalidate(stale)
    await auth.invalidate(httpx.Request("GET", "https://api.test/"))
    await auth.prepare_request(httpx.Request("GET", "https://api.test/"))
    assert len(endpoint.token_requests) == 1


async def test_oauth2_concurrent_401s_refresh_once() -> None:
    """Many requests refused with the same revoked token trigger a single new token request."""
    endpoint = TokenEndpoint()
    auth = make_oauth(endpoint)
    async with httpx.AsyncClient(auth=auth, transport=httpx.MockTransport(endpoint)) as client:
        await client.get("https://api.test/warm-up")
        endpoint.revoked.add("tok1")
        responses = await asyncio.gather(*(client.get("https://api.test/") for _ in range(10)))
    assert [r.status_code for r in responses] == [200] * 10
    assert {r.json()["auth"] for r in responses} == {"Bearer tok2"}
    assert len(endpoint.token_requests) == 2


def test_oauth2_refuses_the_sync_client() -> None:
    """Under httpx.Client the handler raises AuthenticationError pointing to the async client."""
    with (
        httpx.Client(auth=make_oauth(echo), transport=httpx.MockTransport(echo)) as client,
        pytest.raises(AuthenticationError, match="AsyncClient"),
    ):
        client.get("https://api.test/")


# -- JWTAuth --------------------------------------------------------------------------------


def _decode(request: httpx.Request, key: Any, algorithm: str, **kw: Any) -> dict[str, Any]:
    token = request.headers["Authorization"].removeprefix("Bearer ")
    options = {"verify_exp": False, "verify_iat": False}
    return dict(pyjwt.decode(token, key, algorithms=[algorithm], options=options, **kw))


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
def test_jwt_asymmetric_algorithms_verify_with_the_public_key(algorithm: str) -> None:
    """RS256 and ES256 tokens verify with the matching public key."""
    private: Any = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if algorithm == "RS256"
        else ec.generate_private_key(ec.SECP256R1())
    )
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    auth = JWTAuth(pem, algorithm, audience=["a", "b"], clock=FakeClock())
    request = auth.sync_prepare_request(httpx.Request("GET", "https://api.test/"))
    claims = _decode(request, private.public_key(), algorithm, audience="b")
    assert claims["aud"] == ["a", "b"] and claims["exp"] - claims["iat"] == 300


def test_jwt_is_reused_until_near_expiry_then_re_signed() -> None:
    """The same token is sent until ttl - early_expiry has passed, then a new one."""
    clock = FakeClock()
    auth = JWTAuth(HMAC_KEY, ttl=100, early_expiry=10, clock=clock)
    first = auth.token()
    clock.advance(89)
    assert auth.token() == first
    clock.advance(1)
    second = auth.token()
    assert second != first
    iat = _decode(
        httpx.Request(
            "GET", "https://a/", headers={"Authorization": f"Bearer {second.get_secret_value()}"}
        ),
        HMAC_KEY,
        "HS256",
    )["iat"]
    assert iat == int(clock.wall())


async def test_jwt_invalidate_re_signs_only_for_the_refused_token() -> None:
    """invalidate() drops the current token only when the request carried it."""
    clock = FakeClock()
    auth = JWTAuth(HMAC_KEY, clock=clock)
    request = await auth.prepare_request(httpx.Request("GET", "https://a.test/"))
    before = auth.token()
    await auth.invalidate(
        httpx.Request("GET", "https://a.test/", headers={"Authorization": "Bearer x"})
    )
    assert auth.token() is before
    clock.advance(1)
    await auth.invalidate(request)
    assert auth.token() != before


def test_jwt_works_under_the_sync_client() -> None:
    """JWT signing needs no async I/O, so httpx.Client works."""
    with httpx.Client(
        auth=JWTAuth(HMAC_KEY, subject="s"), transport=httpx.MockTransport(echo)
    ) as c:
        header = c.get("https://api.test/").json()["headers"]["authorization"]
    assert pyjwt.decode(header[7:], HMAC_KEY, algorithms=["HS256"])["sub"] == "s"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"algorithm": "none"}, "algorithm"),
        ({"algorithm": "HS512"}, "algorithm"),
        ({"key": ""}, "key"),
        ({"key": b""}, "key"),
        ({"key": 3}, "key"),
        ({"ttl": 0}, "ttl"),
        ({"ttl": "5"}, "ttl"),
        ({"early_expiry": -1}, "early_expiry"),
        ({"early_expiry": 300}, "early_expiry"),
        ({"claims": {"exp": 1}}, "claims"),
        ({"claims": {"x": object()}}, "claims"),
        ({"claims": {1: "x"}}, "claims"),
        ({"headers": {"alg": "none"}}, "headers"),
        ({"issuer": ""}, "issuer"),
        ({"subject": 5}, "subject"),
        ({"audience": []}, "audience"),
        ({"audience": [""]}, "audience"),
    ],
)
def test_jwt_configuration_errors_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    """Invalid JWTAuth arguments raise ConfigurationError naming the field."""
    params: dict[str, Any] = {"key": HMAC_KEY}
    params.update(kwargs)
    with pytest.raises(ConfigurationError) as info:
        JWTAuth(**params)
    assert info.value.field == field


def test_jwt_without_pyjwt_gives_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing PyJWT raises ImportError with pip install 'httpx-resilience[jwt]'."""
    monkeypatch.setitem(sys.modules, "jwt", None)
    with pytest.raises(ImportError, match=r"pip install 'httpx-resilience\[jwt\]'"):
        JWTAuth(HMAC_KEY)


def test_jwt_without_cryptography_refuses_asymmetric_algorithms(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """RS256 without cryptography raises ImportError with the install hint."""
    import jwt.algorithms

    monkeypatch.setattr(jwt.algorithms, "has_crypto", False)
    with pytest.raises(ImportError, match="cryptography"):
        JWTAuth("pem", "RS256")


def test_jwt_signing_failures_are_authentication_errors() -> None:
    """A bad key, a failing or empty key provider raise AuthenticationError without the key."""
    request = httpx.Request("GET", "https://a.test/")
    with pytest.raises(AuthenticationError, match="RS256") as info:
        JWTAuth("not-a-pem-key-material", "RS256").sync_prepare_request(request)
    assert "not-a-pem" not in str(info.value)

    def missing() -> str:
        raise KeyError("JWT_KEY")

    with pytest.raises(AuthenticationError, match="KeyError"):
        JWTAuth(missing).sync_prepare_request(request)
    with pytest.raises(AuthenticationError, match="no usable key"):
        JWTAuth(lambda: "").sync_prepare_request(request)
    for provider in (lambda: HMAC_KEY.encode(), lambda: Secret(HMAC_KEY)):
        ok = JWTAuth(provider).sync_prepare_request(httpx.Request("GET", "https://a.test/"))
        assert _decode(ok, HMAC_KEY, "HS256")["exp"]
    assert "provider" in repr(JWTAuth(lambda: Secret(HMAC_KEY)))
    assert HMAC_KEY not in repr(JWTAuth(HMAC_KEY))


# -- FallbackAuth --------------------------------------------------------------------------


class Flaky(AuthHandler):
    """A primary whose failure is switched on and off by the test."""

    per_attempt = True

    def __init__(self) -> None:
        self.failing = True

    async def prepare_request(self, request: httpx.Request) -> httpx.Request:
        return self.sync_prepare_request(request)

    def sync_prepare_request(self, request: httpx.Request) -> httpx.Request:
        if self.failing:
            raise RuntimeError("key file /secret/value unreadable")
        request.headers["Authorization"] = "Bearer primary"
        return request


async def test_fallback_warns_once_per_outage_and_logs_recovery(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One WARNING when the primary starts failing, INFO on recovery, WARNING again next outage."""
    caplog.set_level(logging.DEBUG, logger="httpx_resilience.auth")
    primary = Flaky()
    auth = FallbackAuth(primary, APIKeyAuth("fallback-key"))
    request = httpx.Request("GET", "https://a.test/")
    for _ in range(3):
        await auth.prepare_request(request)
    assert request.headers["X-API-KEY"] == "fallback-key" and auth.degraded
    primary.failing = False
    await auth.prepare_request(request)
    assert request.headers["Authorization"] == "Bearer primary"
    assert "X-API-KEY" not in request.headers  # no stale fallback credential
    primary.failing = True
    await auth.prepare_request(request)
    levels = [r.levelname for r in caplog.records if r.levelno >= logging.INFO]
    assert levels == ["WARNING", "INFO", "WARNING"]
    assert "RuntimeError" in caplog.text
    assert "/secret/value" not in caplog.text and "fallback-key" not in caplog.text


def test_fallback_sync_path_and_both_failing() -> None:
    """The sync path falls back too; when both fail an AuthenticationError says so."""
    auth = FallbackAuth(make_oauth(echo), BasicAuth("u", "p"))
    with httpx.Client(auth=auth, transport=httpx.MockTransport(echo)) as client:
        header = client.get("https://api.test/").json()["headers"]["authorization"]
    assert header.startswith("Basic ")
    auth.primary = Flaky()  # type: ignore[assignment]
    auth.primary.failing = False  # type: ignore[attr-defined]
    assert (
        auth.sync_prepare_request(httpx.Request("GET", "https://a/")).headers["Authorization"]
        == "Bearer primary"
    )
    both = FallbackAuth(Flaky(), make_oauth(echo))
    with pytest.raises(AuthenticationError, match="both failed"):
        both.sync_prepare_request(httpx.Request("GET", "https://a.test/"))


async def test_fallback_async_both_failing_and_delegation() -> None:
    """Async both-fail raises AuthenticationError; invalidate, strip and names delegate."""
    both = FallbackAuth(Flaky(), BearerAuth(lambda: ""))
    with pytest.raises(AuthenticationError, match="both failed"):
        await both.prepare_request(httpx.Request("GET", "https://a.test/"))
    auth = FallbackAuth(JWTAuth(HMAC_KEY), APIKeyAuth("k", name="key", location="query"))
    assert auth.sensitive_headers == {"authorization"}
    assert auth.sensitive_query_params == {"key"}
    request = await auth.prepare_request(httpx.Request("GET", "https://a.test/"))
    await auth.invalidate(request)
    assert "JWTAuth" in repr(auth) and HMAC_KEY not in repr(auth)
    with pytest.raises(ConfigurationError) as info:
        FallbackAuth(BearerAuth("t"), httpx.BasicAuth("u", "p"))  # type: ignore[arg-type]
    assert info.value.field == "fallback"


async def test_fallback_replays_once_on_401_through_the_used_handler() -> None:
    """A 401 with FallbackAuth refreshes the handler that produced the credential, once."""
    endpoint = TokenEndpoint()
    endpoint.resource_status = [401]
    auth = FallbackAuth(make_oauth(endpoint), APIKeyAuth("k"))
    async with httpx.AsyncClient(auth=auth, transport=httpx.MockTransport(endpoint)) as client:
        response = await client.get("https://api.test/")
    assert response.status_code == 200
    assert response.json()["auth"] == "Bearer tok2"


# -- secrets never reach a text ---------------------------------------------------------------


def _all_text(exc: BaseException) -> str:
    """Everything a traceback, a log line or a debugger shows of ``exc`` and its chain."""
    import traceback

    return "".join(traceback.format_exception(exc)) + str(exc) + repr(exc)


def test_a_token_read_from_a_file_is_refused_with_a_hint_and_without_itself() -> None:
    """BearerAuth('...\\n') says the token ends with a line break to strip, never the token."""
    token = "file-token-0123456789abcdef"
    with pytest.raises(ConfigurationError) as info:
        BearerAuth(token + "\n")
    assert info.value.field == "token" and "line break" in str(info.value)
    assert "strip" in str(info.value) and token not in _all_text(info.value)
    with pytest.raises(ConfigurationError, match="line break"):
        APIKeyAuth(token + "\r\n")


async def test_a_provider_token_with_a_newline_and_a_provider_quoting_a_token() -> None:
    """A provider's bad token, and its own error text quoting a token it gave before, are hidden."""
    calls: list[int] = []
    old = "provider-token-old-0123456789"

    def provider() -> str:
        calls.append(1)
        if len(calls) == 1:
            return old
        if len(calls) == 2:
            return "provider-token-new-0123456789\n"
        raise RuntimeError(f"refresh failed; current token was {old}")

    auth = BearerAuth(provider)
    await auth.prepare_request(httpx.Request("GET", "https://api.test/"))
    for _ in range(2):
        with pytest.raises(AuthenticationError) as info:
            await auth.prepare_request(httpx.Request("GET", "https://api.test/"))
        text = _all_text(info.value)
        assert "provider-token" not in text and "0123456789" not in text


def test_api_key_in_the_query_is_hidden_from_urls_and_errors_whatever_its_name() -> None:
    """APIKeyAuth(name='sk', location='query'): the parameter is redacted wherever a URL is shown."""
    from httpx_resilience.exceptions import HTTPClientError
    from httpx_resilience.observe.redact import redact_url, scrub_text

    auth = APIKeyAuth("query-key-value-42", name="sk", location="query")
    request = auth.sync_prepare_request(httpx.Request("GET", "https://api.test/x?page=1"))
    assert request.url.params["sk"] == "query-key-value-42"
    for shown in (
        redact_url(request.url),
        str(HTTPClientError("failed", method="GET", url=request.url)),
        scrub_text(f"GET {request.url} failed; echoed query-key-value-42"),
    ):
        assert "query-key-value-42" not in shown and "sk=[REDACTED]" in shown, shown


def test_basic_password_is_hidden_in_every_form() -> None:
    """The password, the base64 credentials and the form-encoded pair never show."""
    from httpx_resilience.observe.redact import scrub_text

    BasicAuth("svc user", "pa ss/word+1")
    pair = base64.b64encode(b"svc user:pa ss/word+1").decode()
    encoded = base64.b64encode(b"svc+user:pa+ss%2Fword%2B1").decode()
    for form in ("pa ss/word+1", "pa+ss%2Fword%2B1", pair, pair.rstrip("="), encoded):
        assert "[REDACTED]" in scrub_text(f"server echoed {form}"), form


def test_oauth2_scrub_hides_every_encoding_of_the_client_secret() -> None:
    """Raw, quote, quote_plus (both cases), JSON-escaped and Basic forms of the secret go."""
    import json
    from urllib.parse import quote, quote_plus

    secret = 's/e+c r3t&"é-secret'
    auth = OAuth2ClientCredentials(TOKEN_URL, "c id", secret, transport=httpx.MockTransport(echo))
    request = auth._token_request()
    basic = base64.b64encode(f"{quote_plus('c id')}:{quote_plus(secret)}".encode()).decode()
    forms = [secret, quote(secret), quote(secret, safe=""), quote_plus(secret),
             quote_plus(secret).lower(), json.dumps(secret)[1:-1], basic, basic.rstrip("="),
             base64.b64encode(f"c id:{secret}".encode()).decode()]
    for form in forms:
        shown = request.scrub(f"client_secret={form}; Authorization: Basic {form}")
        assert "r3t" not in shown and basic not in shown, (form, shown)


async def test_oauth2_error_code_carrying_the_secret_is_not_shown() -> None:
    """An 'error' code that echoes the secret is replaced, as the description is."""
    auth = make_oauth(TokenEndpoint(httpx.Response(400, json={"error": SECRET})))
    with pytest.raises(AuthenticationError) as info:
        await auth.prepare_request(httpx.Request("GET", "https://api.test/"))
    assert SECRET not in _all_text(info.value) and info.value.error == "[REDACTED]"


def test_jwt_key_provider_errors_are_scrubbed_in_the_chain() -> None:
    """A key provider whose error quotes the PEM key: the chained error no longer shows it."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()

    def provider() -> str:
        raise ValueError(f"cannot use key {pem}")

    with pytest.raises(AuthenticationError) as info:
        JWTAuth(provider, "ES256").token()
    assert "PRIVATE KEY" not in _all_text(info.value)
    assert "MII" not in _all_text(info.value)


async def test_fallback_logs_and_errors_carry_no_secret(caplog: pytest.LogCaptureFixture) -> None:
    """FallbackAuth's warning and its both-failed error show no credential of either side."""
    caplog.set_level(logging.DEBUG, logger="httpx_resilience")
    leaked = "fallback-secret-0123456789"
    BearerAuth(leaked)  # registered as a secret this process sends

    class Leaky(AuthHandler):
        async def prepare_request(self, request: httpx.Request) -> httpx.Request:
            raise AuthenticationError(f"refused with Bearer {leaked}")

    auth = FallbackAuth(Leaky(), Leaky())
    with pytest.raises(AuthenticationError) as info:
        await auth.prepare_request(httpx.Request("GET", "https://api.test/"))
    assert leaked not in _all_text(info.value)
    assert caplog.records and all(leaked not in r.getMessage() for r in caplog.records)


async def test_the_auth_flow_scrubs_a_custom_handlers_error() -> None:
    """A handler of the user's own that quotes its credential: the flow scrubs it in place."""
    token = "custom-handler-token-0123456789"

    class Custom(AuthHandler):
        async def prepare_request(self, request: httpx.Request) -> httpx.Request:
            raise RuntimeError(f"cannot send Authorization: Bearer {token}")

    async with httpx.AsyncClient(auth=Custom(), transport=httpx.MockTransport(echo)) as client:
        with pytest.raises(RuntimeError) as info:
            await client.get("https://api.test/")
    assert token not in _all_text(info.value)


def test_the_sync_auth_flow_scrubs_a_custom_handlers_error() -> None:
    """The same under a synchronous httpx.Client."""
    token = "custom-sync-token-0123456789"

    class CustomSync(AuthHandler):
        async def prepare_request(self, request: httpx.Request) -> httpx.Request:
            return self.sync_prepare_request(request)

        def sync_prepare_request(self, request: httpx.Request) -> httpx.Request:
            raise RuntimeError(f"cannot send Authorization: Bearer {token}")

    client = httpx.Client(auth=CustomSync(), transport=httpx.MockTransport(echo))
    with client, pytest.raises(RuntimeError) as info:
        client.get("https://api.test/")
    assert token not in _all_text(info.value)

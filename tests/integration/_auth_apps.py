"""Real aiohttp.web apps for the auth tests: a token endpoint with a protected
resource, and a second origin that records what a redirect brought it.

Both run on 127.0.0.1 with an OS-assigned port (see :func:`start`).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus, unquote_plus

import jwt as pyjwt
from aiohttp import web
from aiohttp.test_utils import TestServer

CLIENT_ID = "svc-orders"
CLIENT_SECRET = "cs-7f3a9c2e-very-secret-value"
JWT_KEY = "jwt-hmac-key-0123456789abcdef0123456789abcdef"
JWT_AUDIENCE = "orders-api"

_OMIT = object()


@dataclass
class AuthServerState:
    """Programmable behaviour and request accounting of :func:`auth_app`."""

    base_url: str = ""
    clients: dict[str, str] = field(default_factory=lambda: {CLIENT_ID: CLIENT_SECRET})
    expires_in: Any = 3600
    token_failures: list[int] = field(default_factory=list)
    token_delay: float = 0.0
    token_body: dict[str, Any] | None = None
    token_hits: int = 0
    token_requests: list[dict[str, Any]] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)
    revoked: set[str] = field(default_factory=set)
    reject_next: int = 0
    resource_hits: int = 0
    seen: list[dict[str, Any]] = field(default_factory=list)
    redirect_to: str = ""
    echo_refusals: bool = False
    _counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


@dataclass
class EchoState:
    """What the second origin received."""

    base_url: str = ""
    seen: list[dict[str, Any]] = field(default_factory=list)


def _client_auth(request: web.Request, form: dict[str, str]) -> tuple[str, str, str]:
    header = request.headers.get("Authorization", "")
    if header.startswith("Basic "):
        raw = base64.b64decode(header[6:]).decode()
        cid, _, secret = raw.partition(":")
        return unquote_plus(cid), unquote_plus(secret), "client_secret_basic"
    return form.get("client_id", ""), form.get("client_secret", ""), "client_secret_post"


def auth_app(state: AuthServerState) -> web.Application:
    """Token endpoint (``/token``), protected resource (``/resource``), JWT-checking
    resource (``/jwt``), header recorder (``/echo``) and a redirect (``/redirect``)."""

    async def token(request: web.Request) -> web.Response:
        state.token_hits += 1
        raw = (await request.read()).decode("latin-1")
        form = {k: str(v) for k, v in (await request.post()).items()}
        cid, secret, method = _client_auth(request, form)
        state.token_requests.append({"form": form, "method": method, "client_id": cid})
        if state.token_delay:
            await asyncio.sleep(state.token_delay)
        if state.token_failures:
            status = state.token_failures.pop(0)
            return web.json_response({"error": "temporarily_unavailable"}, status=status)
        if form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        if state.clients.get(cid) != secret and state.echo_refusals:
            # A hostile echo: the form body as received (form-encoded), the Authorization
            # header (base64 of id:secret), the secret JSON-escaped and percent-encoded both
            # ways, in the description, in the error code and in a header of the answer.
            header = request.headers.get("Authorization", "-")
            description = (
                f"refused body={raw} authorization={header} json={json.dumps(secret)} "
                f"quoted={quote(secret, safe='')} plus={quote_plus(secret)} raw={secret}"
            )
            return web.json_response(
                {"error": quote_plus(secret)[:60], "error_description": description},
                status=401,
                headers={"X-Echo": header},
            )
        if state.clients.get(cid) != secret:
            # A careless server that echoes what it was sent: the client must redact it.
            return web.json_response(
                {
                    "error": "invalid_client",
                    "error_description": f"Client authentication failed (secret {secret})",
                },
                status=401,
            )
        if state.token_body is not None:
            return web.json_response(state.token_body)
        access = f"at-{next(state._counter)}-{CLIENT_ID}"
        state.issued.append(access)
        body: dict[str, Any] = {"access_token": access, "token_type": "Bearer"}
        if state.expires_in is not None:
            body["expires_in"] = state.expires_in
        return web.json_response(body)

    def record(request: web.Request) -> None:
        state.seen.append({"headers": dict(request.headers), "query": dict(request.query)})

    async def resource(request: web.Request) -> web.Response:
        state.resource_hits += 1
        record(request)
        header = request.headers.get("Authorization", "")
        if state.reject_next > 0:
            state.reject_next -= 1
            return web.json_response({"error": "invalid_token"}, status=401)
        access = header.removeprefix("Bearer ")
        if access not in state.issued or access in state.revoked:
            return web.json_response({"error": "invalid_token"}, status=401)
        return web.json_response({"ok": True, "token": access})

    async def jwt_resource(request: web.Request) -> web.Response:
        record(request)
        header = request.headers.get("Authorization", "")
        try:
            claims = pyjwt.decode(
                header.removeprefix("Bearer "),
                JWT_KEY,
                algorithms=["HS256"],
                audience=JWT_AUDIENCE,
            )
        except pyjwt.PyJWTError as exc:
            return web.json_response({"error": type(exc).__name__}, status=401)
        return web.json_response({"claims": claims})

    async def echo(request: web.Request) -> web.Response:
        record(request)
        return web.json_response({"ok": True})

    async def redirect(request: web.Request) -> web.Response:
        record(request)
        raise web.HTTPFound(state.redirect_to)

    app = web.Application()
    app.router.add_post("/token", token)
    app.router.add_get("/resource", resource)
    app.router.add_get("/jwt", jwt_resource)
    app.router.add_get("/echo", echo)
    app.router.add_get("/redirect", redirect)
    return app


def echo_app(state: EchoState) -> web.Application:
    """The other origin: records headers and query of every request."""

    async def echo(request: web.Request) -> web.Response:
        state.seen.append({"headers": dict(request.headers), "query": dict(request.query)})
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/landing", echo)
    return app


@asynccontextmanager
async def start(app: web.Application) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1 with an OS-assigned port; yield its base URL."""
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield str(server.make_url("/")).rstrip("/")
    finally:
        await server.close()

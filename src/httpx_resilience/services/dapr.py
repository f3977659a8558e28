"""``DaprClient``: the Dapr sidecar's HTTP API with a breaker and retries (seed 004).

::

    async with get_dapr_client() as client:
        await client.publish_event("pubsub", "topic", {"message": "data"})
        await client.save_state("statestore", "key", {"value": "data"})
        data = await client.get_state("statestore", "key")      # None when missing

The sidecar is found at ``DAPR_HTTP_ENDPOINT``, else at
``http://${DAPR_RUNTIME_HOST:-127.0.0.1}:${DAPR_HTTP_PORT:-3500}``; a
``DAPR_API_TOKEN`` is sent as the ``dapr-api-token`` header (redacted in logs).

**Non-blocking error handling.** By default a failure of the sidecar (or of the
component behind it) never raises: ``publish_event``, ``save_state``,
``save_bulk_state`` and ``delete_state`` return ``False``; ``get_state`` and
``get_bulk_state`` return ``None``. It is logged (ERROR; WARNING while the
breaker is open) with the operation and component, never the payload.
``raise_on_error=True`` raises :class:`~httpx_resilience.ExternalServiceError`
instead (while the breaker is open, one that is also a
:class:`~httpx_resilience.CircuitBreakerOpenError`). Mistakes in the call
itself (an empty store name) always raise.

The client's breaker opens after 3 consecutive failures and probes again after
60 s. State reads, writes and deletes are idempotent and retried; a publish is
retried only when it certainly was not sent (a connection error), since a
retry after a 5xx could deliver the event twice.

This module holds the client and :func:`get_dapr_client`; finding the sidecar
(:func:`dapr_endpoint`, the token) is ``_dapr_endpoint``'s job and the API's
paths, parameters and bodies ``_dapr_wire``'s.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx

from ..auth import APIKeyAuth
from ..auth._secret import SecretLike
from ..client import AsyncHTTPClient
from ..clock import Clock
from ..config import ClientConfig
from ..exceptions import (
    CircuitBreakerOpenError,
    ConfigurationError,
    ExternalServiceError,
    HTTPClientError,
    InvalidRequestError,
    ResponseDecodeError,
)
from ..models import HTTPResponse
from ..observe.events import Observer
from ..observe.redact import redact_url
from ..policies.breaker import CircuitBreaker
from ._dapr_endpoint import TOKEN_HEADER, dapr_endpoint, resolve_token
from ._dapr_wire import (
    IDEMPOTENT,
    bulk_values,
    metadata_params,
    path_segment,
    publish_body,
    state_item,
    state_value,
)
from ._errors import as_external_error, status_error
from .registry import ServiceRegistry, default_registry

__all__ = ["DaprClient", "dapr_endpoint", "get_dapr_client"]

_log = logging.getLogger("httpx_resilience.dapr")

SERVICE = "dapr"


class DaprClient:
    """A client of the Dapr sidecar's HTTP API (publish/subscribe and state).

    Args:
        endpoint: the sidecar's URL (see :func:`dapr_endpoint` for the default).
        api_token: the Dapr API token (``DAPR_API_TOKEN`` by default).
        timeout: seconds for one attempt.
        retry_attempts: retries after the first attempt.
        retry_backoff_factor: the first backoff delay, in seconds.
        failure_threshold: consecutive failures that open the breaker.
        recovery_timeout: seconds before the open breaker admits a probe.
        raise_on_error: raise :class:`~httpx_resilience.ExternalServiceError`
            instead of logging and returning ``False``/``None``.
        http: an existing client to use (not closed by this one; the settings
            above are then ignored), as :func:`get_dapr_client` does.
        transport: the inner ``httpx`` transport (for tests).
        observers: pipeline event hooks.
        clock: the time source (a ``FakeClock`` in tests).

    Raises:
        ConfigurationError: the endpoint or a setting is invalid.

    Every operation below raises :class:`~httpx_resilience.InvalidRequestError`
    for an empty component name or key (nothing is sent), and, with
    ``raise_on_error``, :class:`~httpx_resilience.ExternalServiceError` when
    the call fails; otherwise a failure is logged and gives ``False``/``None``.
    """

    def __init__(
        self, endpoint: str | None = None, *, api_token: SecretLike | None = None,
        timeout: float = 30.0, retry_attempts: int = 3, retry_backoff_factor: float = 0.5,
        failure_threshold: int = 3, recovery_timeout: float = 60.0, raise_on_error: bool = False,
        http: AsyncHTTPClient | None = None, transport: httpx.AsyncBaseTransport | None = None,
        observers: Iterable[Observer] = (), clock: Clock | None = None,
    ) -> None:
        self.raise_on_error = raise_on_error
        if http is not None:
            self.endpoint = http.base_url
            self._http = http
            self._owned = False
            return
        self.endpoint = (endpoint or dapr_endpoint()).rstrip("/")
        token = resolve_token(api_token)
        config = ClientConfig(timeout=timeout, retry_attempts=retry_attempts,
                              retry_backoff_factor=retry_backoff_factor)
        breaker = CircuitBreaker(
            failure_threshold, recovery_timeout, name=SERVICE, half_open_max_calls=1, clock=clock
        )
        self._http = AsyncHTTPClient(
            self.endpoint, config, APIKeyAuth(token, name=TOKEN_HEADER) if token else None,
            circuit_breaker=breaker, service=SERVICE, observers=observers,
            transport=transport, clock=clock,
        )
        self._owned = True

    @property
    def http_client(self) -> AsyncHTTPClient:
        """The underlying client."""
        return self._http

    @property
    def circuit_breaker(self) -> CircuitBreaker:
        """The breaker guarding the sidecar."""
        breaker = self._http.circuit_breaker
        assert isinstance(breaker, CircuitBreaker)
        return breaker

    async def aclose(self) -> None:
        """Close the connection pool (unless it was given as ``http=``)."""
        if self._owned:
            await self._http.aclose()

    async def __aenter__(self) -> DaprClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- publish / subscribe ----------------------------------------------------------

    async def publish_event(
        self, pubsub: str, topic: str, data: Any, *,
        content_type: str | None = None, metadata: Mapping[str, str] | None = None,
    ) -> bool:
        """Publish ``data`` to ``topic`` (``POST /v1.0/publish/{pubsub}/{topic}``).

        Args:
            pubsub: the pub/sub component's name.
            topic: the topic.
            data: the event: sent as JSON, or as is when it is ``bytes`` (or a
                ``str`` with a non-JSON ``content_type``).
            content_type: the ``Content-Type`` (``application/json`` by default;
                ``application/cloudevents+json`` for a ready CloudEvent).
            metadata: Dapr metadata, sent as ``metadata.<key>`` query parameters.

        Returns:
            ``True`` when the sidecar accepted the event, ``False`` on failure.
        """
        path = f"/v1.0/publish/{path_segment('pubsub', pubsub)}/{path_segment('topic', topic)}"
        body = publish_body(data, content_type)
        response = await self._send(
            "publish_event", f"pubsub={pubsub!r} topic={topic!r}", "POST", path,
            params=metadata_params(metadata), **body,
        )
        return response is not None

    # -- state ------------------------------------------------------------------------

    async def save_state(
        self, store: str, key: str, value: Any, *,
        etag: str | None = None, metadata: Mapping[str, str] | None = None,
    ) -> bool:
        """Save one value (``POST /v1.0/state/{store}`` with ``[{"key", "value"}]``).

        Args:
            store: the state store component's name.
            key: the key.
            value: a JSON-serialisable value.
            etag: for optimistic concurrency (the save fails on a mismatch).
            metadata: per-item Dapr metadata (``ttlInSeconds`` …).

        Returns:
            ``True`` when saved, ``False`` on failure.
        """
        item = state_item(key, value, etag, metadata)
        return await self._save(store, [item], f"store={store!r} key={key!r}")

    async def save_bulk_state(
        self, store: str, items: Mapping[str, Any] | Iterable[tuple[str, Any]]
    ) -> bool:
        """Save several values in one call (``POST /v1.0/state/{store}``).

        Args:
            store: the state store component's name.
            items: a mapping or ``(key, value)`` pairs.

        Returns:
            ``True`` when all were saved, ``False`` on failure.

        Raises:
            InvalidRequestError: ``items`` is empty.
        """
        pairs = list(items.items() if isinstance(items, Mapping) else items)
        if not pairs:
            raise InvalidRequestError("save_bulk_state: give at least one (key, value)")
        body = [state_item(k, v, None, None) for k, v in pairs]
        return await self._save(store, body, f"store={store!r} keys={len(body)}")

    async def _save(self, store: str, body: list[dict[str, Any]], what: str) -> bool:
        path = f"/v1.0/state/{path_segment('store', store)}"
        response = await self._send("save_state", what, "POST", path, json=body, **IDEMPOTENT)
        return response is not None

    async def get_state(
        self, store: str, key: str, *,
        consistency: str | None = None, metadata: Mapping[str, str] | None = None,
    ) -> Any:
        """Read one value (``GET /v1.0/state/{store}/{key}``).

        Args:
            store: the state store component's name.
            key: the key.
            consistency: ``"eventual"`` or ``"strong"``.
            metadata: Dapr metadata query parameters.

        Returns:
            the value (parsed JSON, or text when it is not JSON); ``None``
            when the key does not exist (204/404) or on failure.
        """
        path = f"/v1.0/state/{path_segment('store', store)}/{path_segment('key', key)}"
        params = metadata_params(metadata)
        if consistency:
            params["consistency"] = consistency
        response = await self._send(
            "get_state", f"store={store!r} key={key!r}", "GET", path,
            missing=(204, 404), params=params,
        )
        if response is None or response.status_code in (204, 404):
            return None
        return state_value(response.content)

    async def get_bulk_state(
        self, store: str, keys: Iterable[str], *, parallelism: int | None = None
    ) -> dict[str, Any] | None:
        """Read several values (``POST /v1.0/state/{store}/bulk``).

        Args:
            store: the state store component's name.
            keys: the keys.
            parallelism: how many reads the sidecar runs at once.

        Returns:
            every requested key mapped to its value (``None`` when it does
            not exist), or ``None`` on failure.
        """
        wanted = list(keys)
        for k in wanted:
            path_segment("key", k)
        path = f"/v1.0/state/{path_segment('store', store)}/bulk"
        body: dict[str, Any] = {"keys": wanted}
        if parallelism is not None:
            body["parallelism"] = parallelism
        what = f"store={store!r} keys={len(wanted)}"
        response = await self._send("get_bulk_state", what, "POST", path, json=body, **IDEMPOTENT)
        if response is None:
            return None
        try:
            items = response.json_data
        except ResponseDecodeError as exc:
            msg = f"bulk state answer is not JSON: {exc.message}"
            error = ExternalServiceError(SERVICE, msg, response.status_code, url=path)
            self._failed("get_bulk_state", what, error, exc)
            return None
        return bulk_values(wanted, items)

    async def delete_state(self, store: str, key: str, *, etag: str | None = None) -> bool:
        """Delete one value (``DELETE /v1.0/state/{store}/{key}``); a missing key is fine.

        Args:
            store: the state store component's name.
            key: the key.
            etag: delete only if the stored ETag matches (sent as ``If-Match``).

        Returns:
            ``True`` when deleted (or absent), ``False`` on failure.
        """
        path = f"/v1.0/state/{path_segment('store', store)}/{path_segment('key', key)}"
        headers = {"If-Match": etag} if etag else None
        response = await self._send(
            "delete_state", f"store={store!r} key={key!r}", "DELETE", path, headers=headers
        )
        return response is not None

    # -- internals --------------------------------------------------------------------

    async def _send(
        self, operation: str, what: str, method: str, path: str, *,
        missing: tuple[int, ...] = (), **kwargs: Any,
    ) -> HTTPResponse | None:
        """Send; return the response, or ``None`` after logging a failure (or raise)."""
        try:
            response = await self._http.request(method, path, **kwargs)
        except (InvalidRequestError, ConfigurationError):
            raise
        except HTTPClientError as exc:
            self._failed(operation, what, as_external_error(SERVICE, exc, method, path), exc)
            return None
        if response.is_success or response.status_code in missing:
            _log.debug("Dapr %s ok (%s): HTTP %d", operation, what, response.status_code)
            return response
        self._failed(operation, what, status_error(SERVICE, response, method, path), None)
        return None

    def _failed(
        self, operation: str, what: str, error: ExternalServiceError, cause: BaseException | None
    ) -> None:
        """Raise ``error`` with ``raise_on_error``; otherwise log it (the non-blocking mode)."""
        if self.raise_on_error:
            raise error from cause
        level = logging.WARNING if isinstance(cause, CircuitBreakerOpenError) else logging.ERROR
        extra = {"dapr_operation": operation, "status_code": error.status_code}
        _log.log(level, "Dapr %s failed (%s): %s", operation, what, error, extra=extra)

    def __repr__(self) -> str:
        state = self.circuit_breaker.state.value
        return f"DaprClient({redact_url(self.endpoint)!r}, breaker={state})"


@asynccontextmanager
async def get_dapr_client(
    *, endpoint: str | None = None, api_token: SecretLike | None = None,
    raise_on_error: bool = False, timeout: float = 30.0, registry: ServiceRegistry | None = None,
) -> AsyncIterator[DaprClient]:
    """Yield a :class:`DaprClient` over the process's pooled sidecar connection.

    The pool and its breaker are shared by every ``get_dapr_client()`` of the
    event loop with the same endpoint, token and timeout, so failures add up
    across calls and connections are reused; leaving the block keeps them open
    (``aclose_all()`` closes them).

    Args:
        endpoint: the sidecar URL (see :func:`dapr_endpoint`).
        api_token: the Dapr API token (``DAPR_API_TOKEN`` by default).
        raise_on_error: raise instead of returning ``False``/``None``.
        timeout: seconds for one attempt.
        registry: where the pool lives (the process-wide registry by default).

    Raises:
        ConfigurationError: the endpoint is invalid.
    """
    reg = registry if registry is not None else default_registry()
    url = (endpoint or dapr_endpoint()).rstrip("/")
    token = resolve_token(api_token)
    digest = hashlib.sha256(token.encode()).hexdigest()[:16] if token else None

    def build() -> AsyncHTTPClient:
        return DaprClient(
            url, api_token=token or "", timeout=timeout, clock=reg.clock,
            transport=reg.transport, observers=reg.observers,
        ).http_client

    http = reg.shared(("dapr", url, digest, timeout), build)
    yield DaprClient(http=http, raise_on_error=raise_on_error)

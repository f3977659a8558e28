"""``StoreClient``: seed 000's typed Store API client, as a worked example of the library.

It is a :class:`~httpx_resilience.BaseAPIClient` with the Store API's rules:

* ``Authorization: Bearer <STORE_API_KEY>`` and an ``X-Request-Id`` (a UUID per
  logical request, the same on its retries: the pipeline sends it);
* a 5 s timeout per attempt; a breaker that opens after 5 failures and probes
  after 30 s (a Prometheus gauge ``store_api_circuit_breaker_state`` follows
  it when ``prometheus_client`` is installed: 0 closed, 1 half-open, 2 open);
* at most 2 retries, only on 429 and 503, after 1 s then 2 s, or after the
  server's ``Retry-After`` (up to 10 s); never on 500 (a logic error on the
  server), and never on a timeout or connection error;
* 404 is "not found" (``None``), not an error; 401 is logged as CRITICAL (the
  API key is wrong); phone numbers and e-mails are masked in every log line;
* search results are trimmed for an LLM tool: at most 5 items, without
  ``image``/``images``/``image_url``/``description``.
"""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

import httpx

from ..auth import BearerAuth
from ..auth._secret import SecretLike
from ..clock import Clock
from ..exceptions import ConfigurationError, ExternalServiceError, InvalidRequestError
from ..observe.events import Observer
from ..observe.redact import mask_pii
from ..policies.breaker import CircuitBreaker, CircuitState
from ..policies.retry import RetryPolicy
from ..settings import Settings
from .base_client import BaseAPIClient

__all__ = ["STORE_RETRY", "StoreClient", "trim_results"]

_log = logging.getLogger("httpx_resilience.store")

SERVICE = "store-api"
MAX_RESULTS = 5
DROPPED_FIELDS: frozenset[str] = frozenset({"image", "images", "image_url", "description"})
GAUGE_NAME = "store_api_circuit_breaker_state"
GAUGE_VALUES: Mapping[CircuitState, int] = {
    CircuitState.CLOSED: 0,
    CircuitState.HALF_OPEN: 1,
    CircuitState.OPEN: 2,
}

STORE_RETRY = RetryPolicy(
    max_attempts=3,
    backoff_factor=1.0,
    multiplier=2.0,
    max_delay=10.0,
    jitter="none",
    statuses=frozenset({429, 503}),
    retry_connect_errors=False,
    retry_read_errors=False,
)
"""Seed 000's retry rule: ≤ 2 retries, only 429/503, 1 s → 2 s or ``Retry-After`` (≤ 10 s)."""

_LIST_KEYS = ("items", "results", "tires", "data")


def trim_results(payload: Any, limit: int = MAX_RESULTS) -> dict[str, Any]:
    """Shape a search answer for an LLM tool: ``{"items": [...], "total": n, "shown": k}``.

    Accepts a list, or a mapping holding the list under ``items``, ``results``,
    ``tires`` or ``data`` (its ``total``/``count`` is kept). At most ``limit``
    items are returned, each without image and description fields.
    """
    items: list[Any] = []
    total: int | None = None
    if isinstance(payload, list):
        items = payload
    elif isinstance(payload, Mapping):
        for key in _LIST_KEYS:
            if isinstance(payload.get(key), list):
                items = payload[key]
                break
        count = payload.get("total", payload.get("count"))
        total = count if isinstance(count, int) and not isinstance(count, bool) else None
    shown = [
        {k: v for k, v in item.items() if k not in DROPPED_FIELDS}
        if isinstance(item, Mapping)
        else item
        for item in items[:limit]
    ]
    count_all = total if total is not None else len(items)
    return {"items": shown, "total": count_all, "shown": len(shown)}


def _masked(params: Mapping[str, Any]) -> dict[str, str]:
    return {k: mask_pii(str(v)) for k, v in params.items()}


class StoreClient(BaseAPIClient):
    """The Store API client (tyres search, details, availability, vehicle fitment).

    Args:
        base_url: the Store API URL (``STORE_API_URL`` by default).
        api_key: the API key, sent as a Bearer token (``STORE_API_KEY`` by default).
        timeout: seconds for one attempt (5).
        retry: replaces :data:`STORE_RETRY`.
        circuit_breaker: a breaker to share (by default 5 failures / 30 s, one probe).
        metrics_registry: a ``prometheus_client.CollectorRegistry`` for the
            breaker gauge (the default registry when omitted).
        metrics: set ``False`` to skip the gauge.
        settings: pool and connection settings (read from the environment when omitted).
        observers: pipeline event hooks.
        transport: the inner ``httpx`` transport (for tests).
        clock: the time source (a ``FakeClock`` in tests).

    Raises:
        ConfigurationError: no URL or no API key.
    """

    service_name = SERVICE

    def __init__(
        self,
        base_url: str | None = None,
        api_key: SecretLike | None = None,
        *,
        timeout: float = 5.0,
        retry: RetryPolicy | None = None,
        circuit_breaker: CircuitBreaker | None = None,
        metrics_registry: Any = None,
        metrics: bool = True,
        settings: Settings | None = None,
        observers: Iterable[Observer] = (),
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
    ) -> None:
        url = base_url or os.environ.get("STORE_API_URL", "").strip()
        key = api_key if api_key is not None else os.environ.get("STORE_API_KEY", "").strip()
        if not url:
            raise ConfigurationError(
                "StoreClient needs the Store API URL: pass base_url= or set STORE_API_URL",
                field="STORE_API_URL",
            )
        if not key:
            raise ConfigurationError(
                "StoreClient needs an API key: pass api_key= or set STORE_API_KEY",
                field="STORE_API_KEY",
            )
        breaker = circuit_breaker or CircuitBreaker(
            5, 30.0, name=SERVICE, half_open_max_calls=1, clock=clock
        )
        super().__init__(
            url,
            timeout=timeout,
            auth=BearerAuth(key),
            settings=settings,
            retry=retry or STORE_RETRY,
            circuit_breaker=breaker,
            not_found_ok=True,
            observers=observers,
            transport=transport,
            clock=clock,
        )
        self.gauge = _breaker_gauge(metrics_registry) if metrics else None
        if self.gauge is not None:
            gauge = self.gauge
            gauge.set(GAUGE_VALUES[breaker.state])
            breaker.add_listener(lambda t: gauge.set(GAUGE_VALUES[t.new]))

    # -- endpoints ---------------------------------------------------------------------

    async def search_tires(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Search tyres; trimmed for an LLM tool (see :func:`trim_results`).

        With any ``vehicle_*`` parameter the vehicle fitment endpoint
        ``GET /vehicles/tires`` is used (the prefix is dropped: ``vehicle_make``
        → ``make``); otherwise ``GET /tires/search``. ``None`` values are left out.

        Raises:
            ExternalServiceError: the Store API failed.
        """
        clean = {k: v for k, v in params.items() if v is not None}
        if any(k.startswith("vehicle_") for k in clean):
            query = {k.removeprefix("vehicle_"): v for k, v in clean.items()}
            return trim_results(await self._call("/vehicles/tires", query))
        return trim_results(await self._call("/tires/search", clean))

    async def get_tire(self, tire_id: str | int) -> dict[str, Any] | None:
        """One tyre's details (``GET /tires/{id}``); ``None`` when it does not exist.

        Raises:
            ExternalServiceError: the Store API failed.
        """
        data = await self._call(f"/tires/{_id(tire_id)}", {})
        return data if isinstance(data, dict) else None

    async def check_availability(self, tire_id: str | int) -> dict[str, Any]:
        """Stock of one tyre (``GET /tires/{id}/availability``).

        Returns:
            the API's answer; for an unknown tyre
            ``{"tire_id": ..., "available": False, "message": "Tire not found"}``
            (seed 000: not found is a normal answer, not an error).

        Raises:
            ExternalServiceError: the Store API failed.
        """
        data = await self._call(f"/tires/{_id(tire_id)}/availability", {})
        if data is None:
            return {"tire_id": str(tire_id), "available": False, "message": "Tire not found"}
        return data if isinstance(data, dict) else {"tire_id": str(tire_id), "data": data}

    async def get_vehicle_tires(
        self, make: str, model: str, year: int, season: str | None = None
    ) -> dict[str, Any]:
        """Tyres that fit a vehicle (``GET /vehicles/tires``), trimmed for an LLM tool.

        Raises:
            ExternalServiceError: the Store API failed.
        """
        query: dict[str, Any] = {"make": make, "model": model, "year": year}
        if season is not None:
            query["season"] = season
        return trim_results(await self._call("/vehicles/tires", query))

    # -- internals ---------------------------------------------------------------------

    async def _call(self, path: str, params: Mapping[str, Any]) -> Any:
        _log.debug("Store API GET %s params=%s", path, _masked(params))
        return await self.get(path, params=dict(params))

    def on_error(self, error: ExternalServiceError) -> None:
        """Log every failure, phone numbers masked; a 401 is CRITICAL (a bad API key)."""
        if error.status_code == 401:
            _log.critical(
                "Store API rejected the API key (HTTP 401): check STORE_API_KEY. %s",
                mask_pii(str(error)),
                extra={"status_code": 401, "service": SERVICE},
            )
            return
        _log.error(
            "Store API call failed: %s", mask_pii(str(error)),
            extra={"status_code": error.status_code, "service": SERVICE},
        )


def _id(tire_id: str | int) -> str:
    text = str(tire_id).strip()
    if not text:
        raise InvalidRequestError("tire_id must not be empty")
    return quote(text, safe="")


_GAUGES: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _breaker_gauge(registry: Any) -> Any:
    """The ``store_api_circuit_breaker_state`` gauge in ``registry``, or ``None``.

    ``None`` when ``prometheus_client`` is not installed, or when another
    collector already owns the name in that registry (logged).
    """
    try:
        import prometheus_client
    except ImportError:
        _log.debug("prometheus_client is not installed; no %s gauge", GAUGE_NAME)
        return None
    reg = registry if registry is not None else prometheus_client.REGISTRY
    gauge = _GAUGES.get(reg)
    if gauge is None:
        try:
            gauge = prometheus_client.Gauge(
                GAUGE_NAME,
                "Store API circuit breaker state (0 closed, 1 half-open, 2 open)",
                registry=reg,
            )
        except ValueError:
            _log.warning("%s is already registered by another collector; not exported", GAUGE_NAME)
            return None
        _GAUGES[reg] = gauge
    return gauge

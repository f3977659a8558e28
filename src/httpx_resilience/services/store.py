"""``StoreClient``: seed 000's typed Store API client, as a worked example of the library.

It is a :class:`~httpx_resilience.BaseAPIClient` with the Store API's rules:

* ``Authorization: Bearer <STORE_API_KEY>`` and an ``X-Request-Id`` (a UUID per
  logical request, the same on its retries: the pipeline sends it);
* a 5 s timeout per attempt; a breaker that opens after 5 failures and probes
  after 30 s; while it is open, calls fail at once with an error that is an
  ``ExternalServiceError`` with ``status_code`` 503 (seed 000) and a
  ``CircuitBreakerOpenError`` (with ``retry_in``, the remaining cooldown);
* the Prometheus gauge ``store_api_circuit_breaker_state{breaker="store-api"}``
  follows the breaker when ``prometheus_client`` is installed; it is
  :class:`~httpx_resilience.PrometheusObserver`'s own gauge for the namespace
  ``store_api`` (0 closed, 1 open, 2 half-open), so the observer and the client
  share one registry;
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
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from ..auth import BearerAuth
from ..auth._secret import SecretLike
from ..clock import Clock
from ..config import as_default
from ..exceptions import (
    CircuitBreakerOpenError,
    ConfigurationError,
    ExternalServiceError,
    InvalidRequestError,
)
from ..observe.events import Observer
from ..observe.redact import mask_pii
from ..policies.breaker import CircuitBreaker
from ..policies.retry import RetryPolicy
from .base_client import BaseAPIClient

if TYPE_CHECKING:
    from ..observe.prometheus import PrometheusObserver
    from ..settings import Settings

__all__ = ["STORE_RETRY", "StoreClient", "trim_results"]

_log = logging.getLogger("httpx_resilience.store")

SERVICE = "store-api"
TIMEOUT = 5.0
MAX_RESULTS = 5
DROPPED_FIELDS: frozenset[str] = frozenset({"image", "images", "image_url", "description"})
METRICS_NAMESPACE = "store_api"
GAUGE_NAME = f"{METRICS_NAMESPACE}_circuit_breaker_state"

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
        timeout: seconds for one attempt (by default 5, or the settings'
            ``total_timeout`` when that is shorter).
        retry: replaces :data:`STORE_RETRY`.
        circuit_breaker: a breaker to share (by default 5 failures / 30 s, one probe).
        metrics_registry: a ``prometheus_client.CollectorRegistry`` for the
            breaker gauge (the default registry when omitted).
        metrics: set ``False`` to skip the gauge.

    Attributes:
        metrics_observer: the ``PrometheusObserver(metrics_registry,
            namespace="store_api")`` exporting the breaker's state, or ``None``;
            pass it in ``observers=`` to export the request metrics too.
        gauge: its ``store_api_circuit_breaker_state`` gauge family (labelled
            by ``breaker``), or ``None``.
        settings: pool and connection settings (read from the environment when omitted).
        observers: pipeline event hooks.
        transport: the inner ``httpx`` transport (for tests).
        clock: the time source (a ``FakeClock`` in tests).

    Raises:
        ConfigurationError: no URL or no API key.
    """

    service_name = SERVICE
    breaker_open_status = 503

    def __init__(
        self,
        base_url: str | None = None,
        api_key: SecretLike | None = None,
        *,
        timeout: float | None = None,
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
            timeout=timeout if timeout is not None else as_default(TIMEOUT),
            auth=BearerAuth(key),
            settings=settings,
            retry=retry or STORE_RETRY,
            circuit_breaker=breaker,
            not_found_ok=True,
            observers=observers,
            transport=transport,
            clock=clock,
        )
        self.metrics_observer = _breaker_observer(metrics_registry, breaker) if metrics else None
        self.gauge: Any = (
            self.metrics_observer.metrics.breaker_state if self.metrics_observer else None
        )

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
        level = logging.WARNING if isinstance(error, CircuitBreakerOpenError) else logging.ERROR
        _log.log(
            level, "Store API call failed: %s", mask_pii(str(error)),
            extra={"status_code": error.status_code, "service": SERVICE},
        )


def _id(tire_id: str | int) -> str:
    text = str(tire_id).strip()
    if not text:
        raise InvalidRequestError("tire_id must not be empty")
    return quote(text, safe="")


def _breaker_observer(registry: Any, breaker: CircuitBreaker) -> PrometheusObserver | None:
    """A ``PrometheusObserver(registry, namespace="store_api")`` watching ``breaker``, or ``None``.

    Its ``store_api_circuit_breaker_state`` gauge is the observer's own (one
    definition, one encoding), so a ``PrometheusObserver`` or
    ``MetricsMiddleware`` with the same registry and namespace shares it.
    ``None`` when ``prometheus_client`` is not installed, or when another
    collector already owns ``store_api_*`` names in that registry (logged).
    """
    try:
        from ..observe.prometheus import PrometheusObserver

        observer = PrometheusObserver(registry, namespace=METRICS_NAMESPACE)
    except ImportError:
        _log.debug("prometheus_client is not installed; no %s gauge", GAUGE_NAME)
        return None
    except ConfigurationError as exc:
        _log.warning("%s is not exported: %s", GAUGE_NAME, exc)
        return None
    observer.watch_breaker(breaker)
    return observer

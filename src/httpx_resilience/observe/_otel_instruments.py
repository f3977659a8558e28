"""The OpenTelemetry instruments of :class:`~.otel_metrics.MetricsObserver`, created on one meter.

Names, units and descriptions follow the HTTP metric conventions for
``http.client.request.duration`` and the ``resilience.*`` namespace for the
rest; ``docs/observability.md`` has the table with their attributes.
"""

from __future__ import annotations

from typing import Any

from ._otel_attrs import DURATION_BUCKETS, REQUEST_BUCKETS, WAIT_BUCKETS

__all__ = ["Instruments"]


class Instruments:
    """The instruments, created on ``meter`` (an ``opentelemetry.metrics.Meter``).

    Args:
        meter: the meter.
        http_duration: create ``http.client.request.duration`` (else it is ``None``).
    """

    def __init__(self, meter: Any, http_duration: bool) -> None:
        def histogram(name: str, unit: str, text: str, buckets: tuple[float, ...]) -> Any:
            try:
                return meter.create_histogram(
                    name, unit, text, explicit_bucket_boundaries_advisory=buckets
                )
            except TypeError:  # an API older than the advisory (< 1.25): the SDK's buckets
                return meter.create_histogram(name, unit, text)

        counter = meter.create_counter
        self.http_duration = (
            histogram(
                "http.client.request.duration", "s", "Duration of HTTP client requests.",
                DURATION_BUCKETS,
            )
            if http_duration
            else None
        )
        self.request_duration = histogram(
            "resilience.request.duration", "s",
            "Duration of logical requests, retries, waits and backoff included.",
            REQUEST_BUCKETS,
        )
        self.attempts = counter("resilience.attempts", "{attempt}", "Attempts started.")
        self.retries = counter("resilience.retries", "{retry}", "Retries scheduled, by reason.")
        self.transitions = counter(
            "resilience.breaker.transitions", "{transition}",
            "Circuit breaker state changes, by new state.",
        )
        gauge = getattr(meter, "create_gauge", None)  # API >= 1.23
        self.breaker_state = (
            gauge("resilience.breaker.state", "1", "Breaker state: 0 closed, 1 open, 2 half-open.")
            if gauge is not None
            else None
        )
        self.limiter_wait = histogram(
            "resilience.rate_limiter.wait.duration", "s",
            "Time spent waiting for a rate-limiter permit.", WAIT_BUCKETS,
        )
        self.hedges = counter("resilience.hedges", "{hedge}", "Hedged copies started.")
        self.bulkhead_rejections = counter(
            "resilience.bulkhead.rejections", "{request}", "Requests refused by a full bulkhead."
        )
        self.budget_refusals = counter(
            "resilience.retry_budget.refusals", "{refusal}",
            "Retries and hedges the retry budget refused.",
        )
        self.fallbacks = counter(
            "resilience.fallbacks", "{response}", "Requests answered by their fallback."
        )
        self.throttle_rejections = counter(
            "resilience.throttle.rejections", "{request}",
            "Requests the adaptive throttle rejected locally.",
        )
        self.backend_fallbacks = counter(
            "resilience.backend.fallbacks", "{fallback}",
            "Times a shared-state backend stopped answering and policies fell back.",
        )
        self.backend_fallback_duration = histogram(
            "resilience.backend.fallback.duration", "s",
            "Time a shared-state backend spent in fallback.", REQUEST_BUCKETS,
        )
        self.backend_script_duration = histogram(
            "resilience.backend.script.duration", "s",
            "Round trip of one shared-state backend script.", DURATION_BUCKETS,
        )

"""Redaction (``Redactor``) and the observers' bookkeeping, driven by synthetic events (no server)."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import sys
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client import CollectorRegistry

from httpx_resilience.middleware.metrics import MetricsMiddleware, attach_observer
from httpx_resilience.middleware.tracing import TracingMiddleware
from httpx_resilience.observe import redact
from httpx_resilience.observe.events import (
    AttemptFailed,
    AttemptStarted,
    BreakerTransitioned,
    BulkheadRejected,
    HedgeFired,
    LimiterWaited,
    RequestFinished,
    RetryScheduled,
)
from httpx_resilience.observe.logging import LoggingObserver, RequestTracker
from httpx_resilience.observe.otel import TracingObserver, _server
from httpx_resilience.observe.prometheus import PrometheusObserver, _reason_label
from httpx_resilience.observe.redactor import DEFAULT_REDACTOR, Redactor

R = DEFAULT_REDACTOR
URL = "https://api.example.com/v1/items?page=2"


def started(rid: str | None = "r1", attempt: int = 1, method: str = "GET", **kw: Any) -> AttemptStarted:
    return AttemptStarted(rid, method, URL, "api.example.com", attempt, 3, **kw)


def finished(rid: str | None = "r1", status: int | None = 200, outcome: str = "success") -> RequestFinished:
    return RequestFinished(rid, "GET", URL, "api.example.com", 1, 0.01, outcome, status)


# -- Redactor ---------------------------------------------------------------------------


def test_default_secret_headers_are_redacted_case_insensitively() -> None:
    """Authorization, Proxy-Authorization, Cookie, Set-Cookie and X-API-KEY values are hidden."""
    shown = R.headers(
        {
            "authorization": "Bearer t",
            "Proxy-Authorization": "Basic x",
            "Cookie": "a=b",
            "set-cookie": "c=d",
            "X-Api-Key": "k",
            "Accept": "application/json",
        }
    )
    assert shown == {
        "authorization": "[REDACTED]",
        "Proxy-Authorization": "[REDACTED]",
        "Cookie": "[REDACTED]",
        "set-cookie": "[REDACTED]",
        "X-Api-Key": "[REDACTED]",
        "Accept": "application/json",
    }


def test_extra_headers_and_a_single_name_are_accepted() -> None:
    """extra_headers adds names (a lone string is one name, not its letters)."""
    red = Redactor(extra_headers="X-Tenant-Secret")
    assert red.extra_headers == frozenset({"x-tenant-secret"})
    assert red.headers([("X-TENANT-SECRET", "s"), ("t", "v")]) == {
        "X-TENANT-SECRET": "[REDACTED]",
        "t": "v",
    }
    assert red.is_sensitive_header("x-tenant-secret") and red.is_sensitive_header("Cookie")
    assert not red.is_sensitive_header("Accept")


def test_token_like_query_params_and_user_info_are_redacted() -> None:
    """Default and extra query parameters and URL user-info are replaced by [REDACTED]."""
    red = Redactor(extra_params={"Session"})
    shown = red.url("https://bob:pw@api.example.com/x?api_key=1&token=2&session=3&q=ok")
    assert shown == (
        "https://[REDACTED]@api.example.com/x?api_key=[REDACTED]&token=[REDACTED]"
        "&session=[REDACTED]&q=ok"
    )
    assert red.url(httpx.URL("https://h/x?access_token=abc")).endswith("access_token=[REDACTED]")


def test_phone_numbers_and_emails_are_masked_in_urls() -> None:
    """PII is masked in path segments (plain or percent-encoded) and query values; ids are kept."""
    url = httpx.URL(
        "https://h/users/+79123456789/orders/12345678901234",
        params={"phone": "+7 912 345-67-89", "email": "john.doe@example.com"},
    )
    shown = R.url(url)
    assert "79123456789" not in shown and "345-67" not in shown and "john.doe" not in shown
    assert "/users/+*********89/" in shown and "/12345678901234" in shown
    assert "j***@example.com" in shown
    assert "7912" not in R.url("https://h/u/%2B7%20912%20345%2067%2089/x")
    assert R.url("https://h/plain/path") == "https://h/plain/path"


def test_mask_pii_can_be_switched_off_but_secrets_stay_hidden() -> None:
    """mask_pii=False shows phones and e-mails yet still redacts secrets and user-info."""
    red = Redactor(mask_pii=False)
    shown = red.url("https://u:p@h/users/john@example.com?phone=+79123456789&key=s")
    assert shown == "https://[REDACTED]@h/users/john@example.com?phone=+79123456789&key=[REDACTED]"
    assert red.url("https://h/x") == "https://h/x"
    assert red.text("call +7 912 345 67 89, Bearer abc.def") == "call +7 912 345 67 89, Bearer [REDACTED]"


def test_disabled_redactor_shows_everything() -> None:
    """enabled=False is a debugging escape hatch: nothing is hidden."""
    red = Redactor(enabled=False)
    assert red.url("https://h/x?token=t") == "https://h/x?token=t"
    assert red.headers({"Cookie": "c"}) == {"Cookie": "c"}
    assert red.text("Bearer abc") == "Bearer abc"
    assert not red.is_sensitive_header("Cookie")


def test_free_text_is_scrubbed_of_credentials_and_pii() -> None:
    """Exception texts lose Bearer/Basic credentials, secret pairs, phones and e-mails."""
    text = (
        "GET https://h/x?api_key=abc123&q=1 failed; Authorization: Bearer eyJ.abc.def; "
        "Basic dXNlcjpwYXNz; X-API-KEY=zzz; mail john.doe@example.com or +7 (912) 345-67-89"
    )
    shown = R.text(text)
    for secret in ("abc123", "eyJ", "dXNlcjpwYXNz", "zzz", "john.doe", "345-67"):
        assert secret not in shown
    assert "q=1" in shown and "api_key=[REDACTED]" in shown


def test_free_text_prose_is_left_alone() -> None:
    """Words that merely look like secret names keep their values."""
    text = "basic auth failed; status code: 503; the token expired"
    assert R.text(text) == text
    assert R.text("") == ""


def test_unparsable_urls_are_scrubbed_as_text() -> None:
    """A URL that cannot be parsed is still shown without its PII."""
    assert R.url("http://[::1/x john@example.com") == "http://[::1/x j***@example.com"
    assert Redactor(mask_pii=False).url("http://[::1/?token=x Bearer abcd") == (
        "http://[::1/?token=[REDACTED] Bearer [REDACTED]"
    )


def test_url_cache_is_bounded() -> None:
    """Redacted URLs are cached, and the cache never grows past its bound."""
    red = Redactor()
    for i in range(600):
        assert red.url(f"https://h/{i}?token=x").endswith("token=[REDACTED]")
    assert 0 < len(red._cache) <= 512
    assert red.url("https://h/1?token=x") == red.url("https://h/1?token=x")


def test_redactor_is_frozen_and_equal_by_settings() -> None:
    """Redactor is an immutable value; the default equals Redactor()."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        R.mask_pii = False  # type: ignore[misc]
    assert Redactor() == R
    assert Redactor(extra_headers={"A"}) == Redactor(extra_headers={"a"})


def test_module_level_functions_keep_their_signatures() -> None:
    """redact_url, redact_headers and mask_pii are unchanged for existing callers."""
    assert list(inspect.signature(redact.redact_url).parameters) == ["url", "extra_params"]
    assert list(inspect.signature(redact.redact_headers).parameters) == ["headers", "extra"]
    assert list(inspect.signature(redact.mask_pii).parameters) == ["text"]


# -- RequestTracker ----------------------------------------------------------------------


def test_tracker_pairs_start_and_finish_without_an_event_loop() -> None:
    """Outside asyncio (trio, sync callers) requests are paired by request id alone."""
    ended: list[tuple[str, str]] = []
    tracker: RequestTracker[str] = RequestTracker(lambda s, why: ended.append((s, why)), max_open=2)
    assert tracker.current() is None and tracker.finish("x") is None and tracker.get("x") is None
    tracker.start("a", "A")
    tracker.start("b", "B")
    assert len(tracker) == 2 and tracker.get("a") == "A" and tracker.current() == "B"
    tracker.start("c", "C")  # over max_open: the oldest goes
    assert ended == [("A", "abandoned")] and len(tracker) == 2
    assert tracker.finish("b") == "B" and tracker.finish("b") is None
    assert tracker.abandon_current("cancelled") == 1 and ended[-1] == ("C", "cancelled")
    assert tracker.abandon_current() == 0 and len(tracker) == 0


def test_tracker_rejects_a_bad_bound() -> None:
    """max_open must be a positive integer."""
    with pytest.raises(ValueError, match="max_open"):
        RequestTracker(lambda s, why: None, max_open=0)


def test_tracker_cleanup_errors_are_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    """An on_abandon callback that raises is logged and ignored."""

    def boom(state: str, why: str) -> None:
        raise RuntimeError("boom")

    tracker: RequestTracker[str] = RequestTracker(boom, max_open=1)
    tracker.start("a", "A")
    tracker.start("b", "B")
    assert "unfinished request raised" in caplog.text and len(tracker) == 1


async def test_tracker_ends_requests_left_open_by_their_task() -> None:
    """A task that ends (normally or cancelled) or starts another request abandons the old one."""
    ended: list[tuple[str, str]] = []
    tracker: RequestTracker[str] = RequestTracker(lambda s, why: ended.append((s, why)))

    async def leaves_open() -> None:
        tracker.start("a", "A")
        tracker.start("a", "A2")  # same id (a nested pipeline): not abandoned
        tracker.start("b", "B")  # another id in the same task: "a" was abandoned

    await asyncio.create_task(leaves_open())
    await asyncio.sleep(0)
    assert ended == [("A2", "abandoned"), ("B", "abandoned")]

    async def hangs() -> None:
        tracker.start("c", "C")
        await asyncio.Event().wait()

    task = asyncio.create_task(hangs())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)
    assert ended[-1] == ("C", "cancelled") and len(tracker) == 0


# -- observers with synthetic events ----------------------------------------------------


def test_prometheus_handles_events_of_requests_it_did_not_see_start() -> None:
    """Ends, failures, retries and hedges of unknown requests are still counted, by host."""
    reg = CollectorRegistry()
    obs = PrometheusObserver(reg, namespace="syn")
    obs(RequestFinished("x", "BREW", URL, "h", 1, 0.5, "failure", None, "ConnectError"))
    obs(AttemptFailed("x", "GET", URL, "h", 1, 3, 0.1, None, "ReadTimeout", "timed out"))
    obs(RetryScheduled("x", "GET", URL, "h", 1, 3, 0.5, "ReadTimeout: timed out"))
    obs(HedgeFired("x", "GET", URL, "h", 1, 0.05))
    obs(BreakerTransitioned("b", "closed", "open", "5 failures"))
    obs(LoggingLike())  # type: ignore[arg-type]
    get = reg.get_sample_value
    assert get("syn_requests_total", {"service": "h", "method": "_OTHER", "status_class": "error", "outcome": "failure"}) == 1
    assert get("syn_retries_total", {"service": "h", "reason": "ReadTimeout"}) == 1
    assert get("syn_attempt_duration_seconds_count", {"service": "h", "status_class": "error"}) == 1
    assert get("syn_hedges_total", {"service": "h"}) == 1
    assert get("syn_circuit_breaker_state", {"breaker": "b"}) == 1
    assert repr(obs) == "PrometheusObserver(namespace='syn', in_flight=0, breakers=0)"


class LoggingLike:
    """Not an event: observers ignore it."""


def test_prometheus_times_the_last_attempt_once() -> None:
    """A final failed attempt is timed by AttemptFailed and not again by RequestFinished."""
    reg = CollectorRegistry()
    obs = PrometheusObserver(reg, namespace="once")
    obs(started("r", service="svc"))
    obs(AttemptFailed("r", "GET", URL, "h", 1, 1, 0.2, 503))
    obs(RequestFinished("r", "GET", URL, "h", 1, 0.2, "failure", 503))
    get = reg.get_sample_value
    assert get("once_attempt_duration_seconds_count", {"service": "svc", "status_class": "5xx"}) == 1
    assert get("once_requests_in_flight", {"service": "svc"}) == 0
    assert obs.abandon_current() == 0


def test_reason_labels_are_short_and_bounded() -> None:
    """Retry reasons become a status or an exception class, never free text."""
    assert _reason_label("HTTP 429 Too Many Requests") == "429"
    assert _reason_label("ConnectError: [Errno 111] Connection refused") == "ConnectError"
    assert _reason_label("") == "unknown"


def test_missing_extras_name_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without prometheus-client or opentelemetry-api the error says what to pip install."""
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    with pytest.raises(ImportError, match=r"pip install 'httpx-resilience\[prometheus\]'"):
        PrometheusObserver()
    with pytest.raises(ImportError, match=r"\[prometheus\]"):
        MetricsMiddleware()
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    with pytest.raises(ImportError, match=r"pip install 'httpx-resilience\[otel\]'"):
        TracingObserver()
    with pytest.raises(ImportError, match=r"\[otel\]"):
        TracingMiddleware()


def _sdk() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def test_tracing_ignores_events_of_unknown_requests() -> None:
    """Failures, retries, hedges and ends of requests it never saw open no span."""
    provider, exporter = _sdk()
    obs = TracingObserver(provider)
    obs(AttemptFailed("x", "GET", URL, "h", 1, 3, 0.1, 503))
    obs(RetryScheduled("x", "GET", URL, "h", 1, 3, 0.5, "HTTP 503", retry_after=1.0))
    obs(HedgeFired("x", "GET", URL, "h", 1, 0.05))
    obs(finished("x"))
    obs(LoggingLike())  # type: ignore[arg-type]
    assert exporter.get_finished_spans() == ()


def test_tracing_a_nonstandard_method_and_an_unreported_attempt() -> None:
    """An unknown method is _OTHER; an attempt left open by the next one is ended as abandoned."""
    provider, exporter = _sdk()
    obs = TracingObserver(provider)
    obs(LimiterWaited("api.example.com", 0.25, "r1"))  # before the first attempt
    obs(started(method="BREW", headers=None))
    obs(RetryScheduled("r1", "BREW", URL, "h", 1, 3, 0.5, "HTTP 503", retry_after=1.0))
    obs(started(attempt=2, method="BREW", headers=None))
    obs(finished(status=500, outcome="failure"))
    spans = {s.context.span_id: s for s in exporter.get_finished_spans()}
    first, second, root = sorted(spans.values(), key=lambda s: s.end_time or 0)
    assert root.name == "HTTP" and (root.attributes or {})["http.request.method"] == "_OTHER"
    assert (root.attributes or {})["http.request.method_original"] == "BREW"
    assert (first.attributes or {})["error.type"] == "abandoned"
    assert (second.attributes or {})["error.type"] == "500"
    assert (second.attributes or {})["http.request.resend_count"] == 1
    assert [e.name for e in root.events] == ["rate_limiter_wait", "retry_scheduled"]
    assert (root.events[1].attributes or {})["httpx_resilience.retry_after"] == 1.0
    assert (root.start_time or 0) < (first.start_time or 0) - 200_000_000


def test_tracing_uses_a_given_propagator_for_inject_and_extract() -> None:
    """A custom propagator continues a forwarded context and injects the attempt's."""
    provider, exporter = _sdk()

    class Recording(TraceContextTextMapPropagator):
        def __init__(self) -> None:
            self.calls: list[str] = []

        def inject(self, carrier: Any, context: Any = None, setter: Any = None) -> None:
            self.calls.append("inject")
            super().inject(carrier, context)

        def extract(self, carrier: Any, context: Any = None, getter: Any = None) -> Any:
            self.calls.append("extract")
            return super().extract(carrier, context)

    prop = Recording()
    obs = TracingObserver(provider, propagator=prop, redactor=Redactor(mask_pii=False))
    headers = httpx.Headers({"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
    obs(started(headers=headers))
    obs(finished())
    assert prop.calls == ["extract", "inject"]
    assert headers["traceparent"] != "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert headers["traceparent"].startswith("00-0af7651916cd43dd8448eb211c80319c-")
    assert len(exporter.get_finished_spans()) == 2


def test_tracing_with_no_sdk_builds_no_attributes() -> None:
    """With the API's no-op provider nothing is recorded and no header is injected."""
    obs = TracingObserver(trace.NoOpTracerProvider())
    headers = httpx.Headers()
    obs(started(headers=headers))
    obs(BreakerTransitioned("b", "closed", "open", "x"))
    obs(finished())
    assert "traceparent" not in headers and obs._attr_cache == {}


def test_tracing_bulkhead_span_host_forms() -> None:
    """The bulkhead span's server.address/port come from the host key, with or without a port."""
    provider, exporter = _sdk()
    obs = TracingObserver(provider)
    obs(BulkheadRejected("api.example.com", 1, 0, None))
    obs(BulkheadRejected("::1:8080", 1, 0, "r"))
    first, second = exporter.get_finished_spans()
    assert (first.attributes or {})["server.address"] == "api.example.com"
    assert "server.port" not in (first.attributes or {})
    assert (second.attributes or {})["server.address"] == "::1:8080"


def test_server_of_a_url() -> None:
    """server.address/port default by scheme; an invalid port gives nothing."""
    assert _server("https://h/x") == ("h", 443)
    assert _server("http://h:8080/x") == ("h", 8080)
    assert _server("ftp://h/x") == ("h", None)
    assert _server("http://h:99999/x") == (None, None)


def test_logging_observer_ignores_other_events(caplog: pytest.LogCaptureFixture) -> None:
    """Events the pipeline already logs (retries, hedges, transitions) are not repeated."""
    caplog.set_level(logging.DEBUG)
    obs = LoggingObserver()
    obs(RetryScheduled("x", "GET", URL, "h", 1, 3, 0.5, "HTTP 503"))
    obs(HedgeFired("x", "GET", URL, "h", 1, 0.05))
    obs(BreakerTransitioned("b", "closed", "open", "x"))
    assert caplog.records == []


async def test_middlewares_accept_an_existing_observer_and_any_client() -> None:
    """Middlewares reuse a given observer and leave clients without a pipeline alone."""
    prom = PrometheusObserver(CollectorRegistry())
    tracing = TracingObserver(trace.NoOpTracerProvider())
    metrics_mw, tracing_mw = MetricsMiddleware(observer=prom), TracingMiddleware(observer=tracing)
    assert metrics_mw.observer is prom and tracing_mw.observer is tracing
    req: Any = object()
    assert await metrics_mw.process_request(req, object()) is req  # type: ignore[arg-type]
    assert await tracing_mw.process_request(req, object()) is req  # type: ignore[arg-type]
    await metrics_mw.process_error(RuntimeError("x"), req)
    await tracing_mw.process_error(asyncio.CancelledError(), req)

    class Client:
        transport = type("T", (), {"observers": ()})()
        circuit_breaker = None

    client = Client()
    assert attach_observer(client, prom) and attach_observer(client, prom)
    assert client.transport.observers == (prom,)
    assert not attach_observer(object(), prom)


def test_logging_observer_builds_nothing_below_its_level(caplog: pytest.LogCaptureFixture) -> None:
    """With DEBUG off, failed attempts and limiter waits produce no record."""
    caplog.set_level(logging.INFO, logger="httpx_resilience.requests")
    obs = LoggingObserver()
    obs(AttemptFailed("x", "GET", URL, "h", 1, 3, 0.1, 503))
    obs(LimiterWaited("h", 0.5, "x"))
    assert caplog.records == []


def test_tracing_between_attempts_and_cache_bound() -> None:
    """A retry's limiter wait lands on the open request; abandoning between attempts ends one span."""
    provider, exporter = _sdk()
    obs = TracingObserver(provider)
    obs(started(headers=None))
    obs(AttemptFailed("r1", "GET", URL, "h", 1, 3, 0.1, 503))
    obs(LimiterWaited("api.example.com", 0.1, "r1"))
    assert obs.abandon_current("cancelled") == 1
    [attempt, root] = exporter.get_finished_spans()
    assert [e.name for e in root.events] == ["rate_limiter_wait"]
    assert (root.attributes or {})["error.type"] == "cancelled"
    assert (attempt.attributes or {})["error.type"] == "503"
    for i in range(520):
        obs(AttemptStarted(f"r{i}", "GET", f"https://h/{i}", "h", 1, 1, None))
        obs(RequestFinished(f"r{i}", "GET", f"https://h/{i}", "h", 1, 0.0, "success", 200))
    assert 0 < len(obs._attr_cache) <= 512

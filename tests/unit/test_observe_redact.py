"""Redaction (``Redactor``) and the observers' bookkeeping, driven by synthetic events (no server)."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
import itertools
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


# -- secret query parameters: patterns, handler-registered names, settings ---------------


@pytest.fixture
def default_params() -> Any:
    """Restore the process-wide parameter patterns after a test that changes them."""
    yield
    redact.reset_sensitive_params()


@pytest.mark.parametrize(
    "name",
    ["api_token", "private_token", "jwt", "auth_token", "sessionid", "pwd", "PHPSESSID",
     "x-amz-signature", "client_secret", "passphrase", "apiKey", "code", "X-Credential"],
)
def test_secret_parameter_names_match_by_pattern(name: str) -> None:
    """Names containing token/secret/key/pass/session/sig/credential, and jwt, code, pwd, are hidden."""
    for shown in (
        redact.redact_url(f"https://h/x?{name}=s3cr3t-v4lue&page=2"),
        R.url(f"https://h/x?{name}=s3cr3t-v4lue&page=2"),
        R.text(f"failed: {name}=s3cr3t-v4lue"),
        redact.scrub_text(f"failed: {name}=s3cr3t-v4lue"),
    ):
        assert "s3cr3t" not in shown and "[REDACTED]" in shown, shown
    assert redact.redact_url(f"https://h/x?{name}=v&page=2").endswith("&page=2")


def test_ordinary_parameters_stay_visible() -> None:
    """page, q, sort, limit, id and friends are not secrets."""
    url = "https://h/x?page=2&q=shoes&sort=asc&limit=5&id=42&lang=en"
    assert redact.redact_url(url) == url and R.url(url) == url
    text = "status code: 503; page=2; the token expired; basic auth failed"
    assert redact.scrub_text(text) is text and R.text(text) == text


def test_a_handler_registered_parameter_is_hidden_everywhere_and_always(
    default_params: None,
) -> None:
    """A name an auth handler sends ('k') is hidden by redact_url, Redactor, errors and text,
    even when a setting tries to show it."""
    from httpx_resilience import APIKeyAuth, HTTPClientError

    APIKeyAuth("key-value-0001", name="kq", location="query")
    url = "https://h/items?kq=key-value-0001&page=2"
    assert redact.redact_url(url) == "https://h/items?kq=[REDACTED]&page=2"
    assert Redactor().url(url) == "https://h/items?kq=[REDACTED]&page=2"
    err = HTTPClientError("boom", method="GET", url=httpx.URL(url))
    assert "key-value" not in str(err) and "kq=[REDACTED]" in str(err)
    assert redact.scrub_text("GET /items?kq=zzz-9 failed") == "GET /items?kq=[REDACTED] failed"
    redact.remove_sensitive_params("kq")
    assert Redactor(allow_params={"kq"}).url(url) == "https://h/items?kq=[REDACTED]&page=2"
    assert redact.is_sensitive_param("KQ")


def test_patterns_can_be_added_and_removed_process_wide(default_params: None) -> None:
    """add/remove/reset change what redact_url, Redactor and scrub_text hide, caches included."""
    url = "https://h/x?tenant_id=t1&keyword=shoes&code=US"
    red = Redactor()
    assert red.url(url) == "https://h/x?tenant_id=t1&keyword=[REDACTED]&code=[REDACTED]"
    redact.add_sensitive_params("tenant_*")
    redact.remove_sensitive_params("keyword", "code")
    assert "tenant_*" in redact.sensitive_params() and "code" not in redact.sensitive_params()
    expected = "https://h/x?tenant_id=[REDACTED]&keyword=shoes&code=US"
    assert redact.redact_url(url) == expected and red.url(url) == expected
    assert redact.scrub_text("keyword=shoes tenant_id=t1") == "keyword=shoes tenant_id=[REDACTED]"
    redact.add_sensitive_params("keyword")  # an exempted name can be hidden again
    assert "keyword=[REDACTED]" in redact.redact_url(url)
    redact.reset_sensitive_params()
    assert redact.sensitive_params() == redact.DEFAULT_PARAM_PATTERNS
    assert red.url(url) == "https://h/x?tenant_id=t1&keyword=[REDACTED]&code=[REDACTED]"
    with pytest.raises(ValueError, match="non-empty"):
        redact.add_sensitive_params("")


def test_redactor_extra_patterns_and_allowed_names() -> None:
    """Redactor(extra_params=patterns, allow_params=names) adds to and exempts from the rules."""
    red = Redactor(extra_params={"X-Tenant-*"}, allow_params={"Keyword"})
    assert red.url("https://h/?x-tenant-id=1&keyword=k&api_key=2") == (
        "https://h/?x-tenant-id=[REDACTED]&keyword=k&api_key=[REDACTED]"
    )
    assert red.text("x-tenant-id=1 keyword=k") == "x-tenant-id=[REDACTED] keyword=k"
    assert red.is_sensitive_param("X-TENANT-ID") and not red.is_sensitive_param("keyword")
    # An event's URL whose user-info is already "[REDACTED]@" (urlsplit refuses it).
    assert red.url("http://[REDACTED]@h:1/x?x-tenant-id=1&a=2") == (
        "http://[REDACTED]@h:1/x?x-tenant-id=[REDACTED]&a=2"
    )


def test_tracing_url_full_follows_a_new_secret_parameter(default_params: None) -> None:
    """url.full attributes are cached per URL, and the cache notices new secret parameters."""
    tp, exp = _sdk()
    obs = TracingObserver(tp)
    url = "https://api.example.com/v1?tenant_ref=abc"
    for rid in ("a", "b"):
        obs(AttemptStarted(rid, "GET", url, "api.example.com", 1, 3))
        obs(RequestFinished(rid, "GET", url, "api.example.com", 1, 0.01, "success", 200))
        if rid == "a":
            redact.add_sensitive_params("tenant_ref")
    shown = [s.attributes["url.full"] for s in exp.get_finished_spans() if s.attributes]
    assert shown[0].endswith("tenant_ref=abc")
    assert shown[-1].endswith("tenant_ref=[REDACTED]")


def test_server_address_never_carries_user_info() -> None:
    """server.address/port come from the host, whatever user-info the URL had."""
    assert _server(R.url("http://user:pa55@h.example:8080/x")) == ("h.example", 8080)
    assert _server("http://user:pa55@h.example/x") == ("h.example", 80)
    assert R.url("http://user:pa55@h.example:8080/x") == "http://[REDACTED]@h.example:8080/x"


def test_redact_url_costs_little_more_than_str_of_the_url() -> None:
    """A URL seen before is a cache hit: within a small factor of str(url) alone."""
    import timeit

    for url in (httpx.URL("https://api.example.com/v1/items"), httpx.URL("https://h/x?a=1&token=2")):
        redact.redact_url(url)
        base = min(timeit.repeat(url.__str__, number=2000, repeat=5))
        cost = min(timeit.repeat(functools.partial(redact.redact_url, url), number=2000, repeat=5))
        assert cost < base * 10 + 0.002, (cost, base)


# -- free text: header values quoted by protocol errors, known secrets ------------------------


def _h11_error(value: bytes) -> Exception:
    """The real error h11 raises for a header value it refuses."""
    import h11

    try:
        h11.Request(method="GET", target="/", headers=[("Host", "h"), ("Authorization", value)])
    except h11.LocalProtocolError as exc:
        return exc
    raise AssertionError("h11 accepted the header")


TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJlLXZhbHVl"


def test_h11_illegal_header_value_is_hidden_with_a_hint() -> None:
    """h11's 'Illegal header value b"Bearer ..\\n"' loses the value but says what was wrong."""
    exc = _h11_error(f"Bearer {TOKEN}\n".encode())
    assert TOKEN in str(exc)  # the problem this guards against
    shown = redact.scrub_text(str(exc))
    assert "eyJ" not in shown and "Bearer" not in shown
    assert shown == "Illegal header value [REDACTED] (it ends with a line break: strip the value)"
    nested = f"exception=LocalProtocolError(LocalProtocolError({str(exc)!r}))"
    assert "eyJ" not in redact.scrub_text(nested) and redact.scrub_text(nested).endswith("))")


@pytest.mark.parametrize(
    "text",
    [
        "Illegal header name b'X-Key: abc1234567\\n'",
        "Invalid header value b'abc1234567\\r\\n'",  # http.client
        "Invalid HTTP header: b'abc1234567'",  # aiohttp
        "Received header value surrounded by whitespace b' abc1234567 '",  # h2
        "illegal header line: bytearray(b'Authorization abc1234567')",  # h11, a response
        "Fault.headers: invalid header 'X-K': 'abc1234567\\x00'",
        'message="Invalid header token:\\n\\n  b\'abc1234567\'\\n    ^"',  # aiohttp
        "illegal status line: bytearray(b'HTTP/1.1 abc1234567')",
    ],
)
def test_every_known_header_error_shape_is_hidden(text: str) -> None:
    """h11, http.client, aiohttp and h2 quote headers differently; none of them survives."""
    shown = redact.scrub_text(text)
    assert "abc1234567" not in shown and "[REDACTED]" in shown, shown


def test_header_errors_without_a_value_are_left_alone() -> None:
    """A message that quotes nothing is returned as it is (the same object)."""
    text = "Illegal header name or value: CR, LF and NUL are not allowed in headers"
    assert redact.scrub_text(text) is text


def test_registered_secrets_are_hidden_in_every_encoding() -> None:
    """raw, quote, quote_plus (upper/lower hex), JSON- and repr-escaped forms all go."""
    from urllib.parse import quote, quote_plus

    secret = 's/e+c r3t&"é'
    redact.register_secret(secret)
    forms = [secret, quote(secret), quote(secret, safe=""), quote_plus(secret),
             quote_plus(secret).lower(), '"s/e+c r3t&\\"\\u00e9"', repr(secret.encode())]
    for form in forms:
        shown = redact.scrub_text(f"server said: {form} (end)")
        assert "r3t" not in shown, (form, shown)
    redact.register_secret("abc")  # too short to hide safely: ignored
    assert redact.scrub_text("abc def") == "abc def"


def test_transient_secrets_are_bounded_and_keep_the_static_ones() -> None:
    """Rotating tokens keep only the newest 64; a static secret registered before stays."""
    redact.register_secret("static-secret-value-1")
    for i in range(100):
        redact.register_secret(f"rotating-token-{i:04d}", transient=True)
    text = "static-secret-value-1 rotating-token-0000 rotating-token-0099"
    assert redact.scrub_text(text) == "[REDACTED] rotating-token-0000 [REDACTED]"


def test_private_keys_and_jwts_are_hidden_by_shape() -> None:
    """A PEM private key or a JWT in a message is hidden even if nobody registered it."""
    pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----"
    assert redact.scrub_text(f"bad key {pem} given") == "bad key [REDACTED] given"
    assert redact.scrub_text(f"token {TOKEN}.") == "token [REDACTED]."


# -- scrub_exception --------------------------------------------------------------------------


def test_scrub_exception_rewrites_the_whole_chain_in_place() -> None:
    """args, messages, notes and the cause/context chain of an httpx-style error are scrubbed."""
    import traceback

    import httpcore

    inner = _h11_error(f"Bearer {TOKEN}\n".encode())
    middle = httpcore.LocalProtocolError(inner)  # httpcore wraps h11's error object
    middle.__cause__ = inner
    outer = httpx.LocalProtocolError(str(inner))
    outer.__cause__ = middle
    outer.add_note(f"while sending Authorization: Bearer {TOKEN}")
    redact.scrub_exception(outer)
    text = "".join(traceback.format_exception(outer)) + repr(outer) + repr(middle)
    assert "eyJ" not in text and "Bearer eyJ" not in text
    assert "Illegal header value [REDACTED]" in str(outer) and "[REDACTED]" in str(middle)


def test_scrub_exception_handles_our_errors_and_bytes_args() -> None:
    """HTTPClientError's message/hint/url and aiohttp-style bytes args are scrubbed too."""
    from httpx_resilience import HTTPClientError

    err = HTTPClientError(f"upstream said Bearer {TOKEN}", hint="retry with token=abcdef123")
    bytes_err = ValueError(b"Invalid HTTP header: b'zzz9876543'")
    err.__context__ = bytes_err
    redact.scrub_exception(err)
    assert "eyJ" not in str(err) and "abcdef123" not in str(err) and "eyJ" not in err.message
    assert b"zzz9876543" not in bytes_err.args[0]


def test_scrub_exception_cleans_aiohttp_request_info() -> None:
    """aiohttp's ClientResponseError shows the request headers and URL in its repr."""
    import aiohttp
    import yarl
    from multidict import CIMultiDict, CIMultiDictProxy

    headers = CIMultiDictProxy(CIMultiDict({"Authorization": f"Bearer {TOKEN}", "Accept": "*/*"}))
    url = yarl.URL("http://h/x?api_key=k-123456789")
    info = aiohttp.RequestInfo(url, "GET", headers, url)
    err = aiohttp.ClientResponseError(info, (), status=400, message="bad")
    redact.scrub_exception(err)
    assert "eyJ" not in repr(err) and "k-123456789" not in repr(err) + str(err)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="exception groups")
def test_scrub_exception_is_bounded_and_survives_cycles_and_groups() -> None:
    """A context cycle ends, a long chain stops after 16, group members are scrubbed."""
    a, b = ValueError(f"a Bearer {TOKEN}"), ValueError(f"b Bearer {TOKEN}")
    a.__context__, b.__context__ = b, a
    redact.scrub_exception(a)
    assert "eyJ" not in str(a) + str(b)
    chain = [RuntimeError(f"{i} Bearer {TOKEN}") for i in range(40)]
    for first, second in itertools.pairwise(chain):
        first.__cause__ = second
    redact.scrub_exception(chain[0])
    assert "eyJ" not in str(chain[15]) and "eyJ" in str(chain[39])
    group = ExceptionGroup("g", [ValueError(f"Bearer {TOKEN}")])  # noqa: F821
    redact.scrub_exception(group)
    assert "eyJ" not in str(group.exceptions[0])


def test_scrub_exception_never_raises() -> None:
    """An exception whose attributes refuse to be set is left as it is, silently."""

    class Stubborn(Exception):
        def __setattr__(self, name: str, value: object) -> None:
            raise AttributeError(name)

    try:
        try:
            raise ValueError(f"cause Bearer {TOKEN}")
        except ValueError as inner:
            raise Stubborn(f"Bearer {TOKEN}") from inner  # __cause__ set by the interpreter
    except Stubborn as caught:
        err = caught
    redact.scrub_exception(err)  # no exception
    assert "eyJ" not in str(err.__cause__)  # what it links to is still scrubbed
    plain = httpx.ConnectError("All connection attempts failed")
    redact.scrub_exception(plain)
    assert str(plain) == "All connection attempts failed"


# -- events and log filters -------------------------------------------------------------------


def test_events_scrub_their_free_texts() -> None:
    """AttemptFailed.error and RetryScheduled.reason never carry a header value or a token."""
    text = f"LocalProtocolError: Illegal header value b'Bearer {TOKEN}\\n'"
    failed = AttemptFailed("r", "GET", URL, "h", 1, 3, 0.1, None, "LocalProtocolError", text)
    retry = RetryScheduled("r", "GET", URL, "h", 1, 3, 0.5, text)
    assert "eyJ" not in (failed.error or "") and "eyJ" not in retry.reason
    assert (failed.error or "").startswith("LocalProtocolError: Illegal header value [REDACTED]")


def test_httpcore_debug_lines_are_scrubbed(caplog: pytest.LogCaptureFixture) -> None:
    """httpcore's trace lines quote the exception it met; the filter (installed with the first
    transport) hides it."""
    from httpx_resilience.observe.logfilter import (
        HTTPCORE_LOGGERS,
        ScrubbingFilter,
        install_httpx_log_redaction,
    )

    install_httpx_log_redaction()
    caplog.set_level(logging.DEBUG, logger="httpcore")
    for name in HTTPCORE_LOGGERS:
        assert any(isinstance(f, ScrubbingFilter) for f in logging.getLogger(name).filters)
    logging.getLogger("httpcore.http11").debug(
        "send_request_headers.failed exception=LocalProtocolError(LocalProtocolError("
        f"\"Illegal header value b'Bearer {TOKEN}\\\\n'\"))"
    )
    assert caplog.records and all("eyJ" not in r.getMessage() for r in caplog.records)


def test_an_api_keys_own_header_is_hidden_wherever_headers_are_shown() -> None:
    """APIKeyAuth(name='X-Shop-Key') registers its header: redact_headers, every Redactor
    and free text hide it, as they hide X-API-KEY."""
    from httpx_resilience import APIKeyAuth

    red = Redactor()  # built before the handler: it follows the process-wide rules
    APIKeyAuth("shop-key-value-0001", name="X-Shop-Key")
    headers = {"X-Shop-Key": "shop-key-value-0001", "Accept": "*/*"}
    assert redact.redact_headers(headers)["X-Shop-Key"] == "[REDACTED]"
    assert red.headers(headers) == {"X-Shop-Key": "[REDACTED]", "Accept": "*/*"}
    assert red.is_sensitive_header("x-shop-key") and "x-shop-key" in redact.sensitive_headers()
    assert "shop-key-value" not in redact.scrub_text("sent X-Shop-Key: other-value-99, failed")
    assert "other-value-99" not in red.text("sent X-Shop-Key: other-value-99, failed")


def test_an_observer_that_raises_is_logged_without_the_secret_it_quoted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """emit() logs a failing observer's traceback, scrubbed first."""
    from httpx_resilience.observe.events import emit

    def leaky(event: Any) -> None:
        raise RuntimeError(f"cannot export Authorization: Bearer {TOKEN}")

    caplog.set_level(logging.ERROR, logger="httpx_resilience.observe")
    emit([leaky], finished())
    [record] = caplog.records
    assert record.exc_info is not None
    import traceback

    assert "eyJ" not in "".join(traceback.format_exception(record.exc_info[1]))


@pytest.mark.parametrize(
    "url", ["http:/u:pw-9f3@host/", "http:u:pw-9f3@host", "javascript:u:pw-9f3@host",
            "u:pw-9f3@host:80/"],
)
def test_user_info_of_a_url_without_authority_is_hidden(url: str) -> None:
    """A URL with no ``//`` puts its user-info in the path: it is hidden all the same."""
    shown = redact.redact_url(url)
    assert "pw-9f3" not in shown and "[REDACTED]@host" in shown

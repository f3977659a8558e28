"""The public API: __all__ pinned sorted and complete, importable without any extra."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import httpx_resilience
import httpx_resilience.testing

EXPECTED = {
    "APIKeyAuth", "AsyncHTTPClient", "AuthHandler", "AuthenticationError", "BasicAuth",
    "BearerAuth", "BreakerTransition", "Bulkhead", "BulkheadFullError", "CircuitBreaker",
    "CircuitBreakerOpenError", "CircuitState", "ClientConfig", "ConfigurationError",
    "ExternalServiceError", "FallbackAuth", "FormSerializer", "HTTPClientError", "HTTPRequest",
    "HTTPRequestError", "HTTPResponse", "HTTPResponseError", "HedgingPolicy",
    "InMemoryTokenCache", "InvalidRequestError", "InvalidURLError", "JSONSerializer", "JWTAuth",
    "LoggingMiddleware", "Middleware", "OAuth2ClientCredentials", "RateLimitError",
    "RateLimiter", "RateLimiterTimeout", "RequestIdMiddleware", "RequestNotReplayableError",
    "RequestTimeoutError", "ResilienceInfo", "ResilientTransport", "ResponseDecodeError", "ResponseTooLargeError",
    "RetryBudget", "RetryExhaustedError", "RetryPolicy", "RetryStats", "Secret",
    "SlidingWindowRateLimiter", "TokenBucketRateLimiter", "TokenCache", "__version__",
    "retry_async", "with_api_retry", "with_network_retry", "with_retry",
    "BaseAPIClient", "DaprClient", "ServiceClient", "ServiceRegistry", "StoreClient",
    "get_dapr_client", "get_service_client", "ServiceSettings", "Settings",
    "LoggingObserver", "MetricsMiddleware", "PrometheusObserver", "Redactor",
    "TracingMiddleware", "TracingObserver",
    "AiohttpTransport", "NativeTransport", "default_transport", "make_transport",
    # shared state (issue 13), the new policies, metrics and types (issue 14)
    "MemoryBackend", "RedisBackend", "SharedStateUnavailableError",
    "Fallback", "AdaptiveThrottle", "ThrottledError", "MetricsObserver",
    "ResilienceOptions", "resilience_info", "RetryDecorator", "RetryOptions",
    # sync support (issue 15)
    "HTTPClient", "retry",
}


def test_all_is_sorted_and_complete() -> None:
    """__all__ is sorted, has exactly the documented names, and each resolves."""
    names = httpx_resilience.__all__
    assert names == sorted(names)
    assert set(names) >= EXPECTED
    extra = set(names) - EXPECTED
    assert not extra, f"new public names must be added to EXPECTED: {extra}"
    for name in names:
        assert getattr(httpx_resilience, name) is not None


def test_public_objects_report_the_top_level_module() -> None:
    """Public classes say they live in httpx_resilience, as httpx's do."""
    assert httpx_resilience.AsyncHTTPClient.__module__ == "httpx_resilience"
    assert httpx_resilience.RetryPolicy.__module__ == "httpx_resilience"
    # the names loaded on first access too (the services, Settings, the optional transports)
    assert httpx_resilience.BaseAPIClient.__module__ == "httpx_resilience"
    assert httpx_resilience.get_service_client.__module__ == "httpx_resilience"
    assert httpx_resilience.Settings.__module__ == "httpx_resilience"


def test_testing_all_is_sorted_and_resolves() -> None:
    """httpx_resilience.testing.__all__ is sorted and every name imports."""
    names = httpx_resilience.testing.__all__
    assert names == sorted(names)
    assert {"ChaosServer", "FakeClock", "TestingMode", "set_testing", "testing_mode"} <= set(names)
    for name in names:
        assert getattr(httpx_resilience.testing, name) is not None


def test_every_public_object_has_a_docstring() -> None:
    """Every public class and function is documented."""
    for name in httpx_resilience.__all__:
        obj = getattr(httpx_resilience, name)
        if callable(obj):
            assert obj.__doc__ and obj.__doc__.strip(), name


BLOCK_EXTRAS = textwrap.dedent(
    """
    import importlib.abc, sys
    BLOCKED = ("redis", "prometheus_client", "opentelemetry", "jwt", "aiohttp", "httptools", "rich", "uvloop",
               "pydantic", "pydantic_settings")

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
            return None

    sys.meta_path.insert(0, Blocker())
    """
)


def test_package_imports_and_works_without_extras() -> None:
    """With every optional extra missing the package imports; JWT, Settings and the demo table give install hints."""
    code = BLOCK_EXTRAS + textwrap.dedent(
        """
        import httpx_resilience as h
        from httpx_resilience.cli import main
        client = h.AsyncHTTPClient("https://api.example.com")
        import httpx
        assert isinstance(client.transport._inner, httpx.AsyncHTTPTransport)  # "auto" without httptools or aiohttp
        try:
            h.JWTAuth("secret-key-of-32-bytes-minimum!!")
        except ImportError as exc:
            assert "httpx-resilience[jwt]" in str(exc), exc
        else:
            raise SystemExit("JWTAuth worked without PyJWT")
        try:
            h.Settings
        except ImportError as exc:
            assert "httpx-resilience[settings]" in str(exc), exc
        else:
            raise SystemExit("Settings worked without pydantic-settings")
        assert main(["demo", "-n", "1"]) == 2
        print("ok")
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("ok")
    assert "httpx-resilience[cli]" in proc.stderr

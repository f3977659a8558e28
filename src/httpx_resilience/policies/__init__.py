"""The resilience policies, each usable on its own or through the transport.

* ``breaker/`` — :class:`~httpx_resilience.CircuitBreaker` (a package: settings,
  sliding windows, the pure state machine, transition events, failure rules,
  permits, per-key children, the breaker itself);
* ``limiter/`` — :class:`~httpx_resilience.RateLimiter` and the token-bucket and
  sliding-window limiters (a package: the interface, the fair FIFO queue, the
  two limits' arithmetic, server rate-limit headers);
* ``retry.py`` — :class:`~httpx_resilience.RetryPolicy`: which outcomes to retry,
  backoff and jitter; the one ``Retry-After`` / HTTP-date parser (RFC 9110);
* ``budget.py`` — :class:`~httpx_resilience.RetryBudget`: retries as a share of
  traffic plus a floor that accrues as a rate;
* ``generic.py`` — ``retry_async`` and the ``with_*retry`` decorators for any
  callable returning an awaitable;
* ``_errors.py`` — what those helpers retry: network errors (httpx, the
  stdlib, aiohttp, requests, curl_cffi), transient statuses, a server's
  ``Retry-After`` carried by an exception;
* ``bulkhead.py`` — :class:`~httpx_resilience.Bulkhead`: bounded concurrency
  with a bounded queue;
* ``hedging.py`` — :class:`~httpx_resilience.HedgingPolicy`: when to send a
  backup request.

Import the policies from :mod:`httpx_resilience`; this package exports nothing itself.
"""

__all__: list[str] = []

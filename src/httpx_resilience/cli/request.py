"""``httpx-resilience request METHOD URL``: a resilient curl.

The request goes through the whole pipeline (retries with backoff and
``Retry-After``, the total deadline, an optional limiter and breaker, auth).
The response body goes to standard output, so it can be piped; the attempt
timeline (each attempt, its outcome and duration, each wait and why) goes to
standard error. ``--format json`` prints one JSON object per request instead.
``--repeat N`` sends the request N times (paced by ``--rate``, counted by
``--breaker``), which is how the limiter and the breaker can be watched.

Exit codes: 0 every response was below 400; 1 a final response was 400 or
above; 3 a request got no response at all (connection, timeout, open
breaker, limiter); 2 the command line was wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

import httpx

from ..client import AsyncHTTPClient
from ..config import ClientConfig
from ..exceptions import HTTPClientError
from ..observe.events import AttemptFailed, AttemptStarted, Event, RequestFinished, RetryScheduled
from ..pipeline import ResilienceInfo
from ..policies.breaker import CircuitBreaker
from ..policies.limiter import TokenBucketRateLimiter
from ._secrets import AUTH_HELP, CLIError, parse_auth, read_value

__all__ = ["add_arguments", "run_request"]

EXIT_OK, EXIT_STATUS, EXIT_USAGE, EXIT_NO_RESPONSE = 0, 1, 2, 3


def add_arguments(req: argparse.ArgumentParser) -> None:
    """The ``request`` command's options."""
    req.add_argument("method", help="HTTP method, e.g. GET")
    req.add_argument("url", help="absolute URL")
    req.add_argument("-H", "--header", action="append", default=[], help="'Name: value' header")
    body = req.add_mutually_exclusive_group()
    body.add_argument("-d", "--data", help="request body as is; @FILE reads a file, @- stdin")
    body.add_argument("--json", dest="json_body", metavar="JSON", help="a JSON body (or @FILE)")
    req.add_argument("--timeout", type=float, default=10.0, help="attempt timeout, seconds")
    req.add_argument("--total-timeout", type=float, help="deadline over all attempts, seconds")
    req.add_argument("--retries", type=int, default=3, help="retries after the first attempt")
    req.add_argument("--rate", type=float, help="client-side limit, requests per second")
    req.add_argument(
        "--breaker", metavar="N/SECONDS", help="a circuit breaker: open after N failures in a row, "
        "for SECONDS (e.g. 5/30)"
    )
    req.add_argument("--auth", metavar="KIND:VALUE", help=AUTH_HELP)
    req.add_argument("--idempotency-key", help="send an Idempotency-Key (makes POST retryable)")
    req.add_argument("--repeat", type=int, default=1, help="send the request N times")
    req.add_argument("-i", "--include", action="store_true", help="print the response headers")
    req.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    req.add_argument("-q", "--quiet", action="store_true", help="no timeline on stderr")


def _headers(items: list[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise CLIError(f"-H: header {item!r} must look like 'Name: value'")
        headers[name.strip()] = value.strip()
    return headers


def _breaker(spec: str | None) -> CircuitBreaker | None:
    if spec is None:
        return None
    count, sep, seconds = spec.partition("/")
    try:
        return CircuitBreaker(int(count), float(seconds) if sep else 30.0, name="cli")
    except ValueError:
        raise CLIError(f"--breaker: expected N/SECONDS such as 5/30, got {spec!r}") from None


def _body(args: argparse.Namespace) -> dict[str, Any]:
    if args.json_body is not None:
        text = read_value(args.json_body, "--json")
        try:
            return {"json": json.loads(text)}
        except json.JSONDecodeError as exc:
            raise CLIError(f"--json: not valid JSON ({exc.msg} at character {exc.pos})") from None
    if args.data is not None:
        return {"content": read_value(args.data, "--data").encode()}
    return {}


class _Timeline:
    """The events of one logical request, with their times, shown as lines."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.entries: list[dict[str, Any]] = []

    def reset(self) -> None:
        """Start the timeline of the next request."""
        self.t0, self.entries = time.perf_counter(), []

    def __call__(self, event: Event) -> None:
        at = round(time.perf_counter() - self.t0, 4)
        if isinstance(event, AttemptStarted):
            self.entries.append({"at": at, "event": "attempt", "attempt": event.attempt})
        elif isinstance(event, AttemptFailed):
            self.entries.append({
                "at": at, "event": "failed", "attempt": event.attempt,
                "status": event.status_code, "error": event.error_type,
                "duration_s": round(event.duration, 4),
            })
        elif isinstance(event, RetryScheduled):
            self.entries.append({
                "at": at, "event": "wait", "delay_s": round(event.delay, 4),
                "reason": event.reason, "retry_after": event.retry_after,
            })
        elif isinstance(event, RequestFinished):
            self.entries.append({
                "at": at, "event": "finished", "outcome": event.outcome,
                "status": event.status_code, "error": event.error_type,
            })

    def lines(self) -> list[str]:
        out = []
        for e in self.entries:
            ms = f"{e['at'] * 1000:8.0f} ms"
            if e["event"] == "attempt":
                out.append(f"{ms}  attempt {e['attempt']}")
            elif e["event"] == "failed":
                what = f"HTTP {e['status']}" if e["status"] else e["error"]
                out.append(f"{ms}    ✗ {what} after {e['duration_s'] * 1000:.0f} ms")
            elif e["event"] == "wait":
                hint = f", Retry-After {e['retry_after']:g} s" if e["retry_after"] else ""
                out.append(f"{ms}    … waiting {e['delay_s']:.3f} s ({e['reason']}{hint})")
        return out


async def _one(
    client: AsyncHTTPClient, args: argparse.Namespace, headers: dict[str, str],
    body: dict[str, Any], timeline: _Timeline,
) -> tuple[int, dict[str, Any]]:
    outcome: dict[str, Any] = {"method": args.method.upper(), "url": args.url}
    try:
        r = await client.request(
            args.method, args.url, headers=headers, idempotency_key=args.idempotency_key, **body
        )
    except (HTTPClientError, httpx.HTTPError) as exc:
        outcome.update(error=type(exc).__name__, message=str(exc), timeline=timeline.entries)
        return EXIT_NO_RESPONSE, outcome
    info = r.extensions.get("resilience")
    outcome.update(
        status=r.status_code, reason=r.reason_phrase, attempts=r.attempts,
        elapsed_s=round(r.elapsed, 4), request_id=r.request_id,
        total_wait_s=round(info.total_wait, 4) if isinstance(info, ResilienceInfo) else None,
        headers=dict(r.headers), body=r.text, timeline=timeline.entries,
    )
    return (EXIT_OK if r.status_code < 400 else EXIT_STATUS), outcome


def _show(
    code: int, outcome: dict[str, Any], timeline: _Timeline, args: argparse.Namespace
) -> None:
    if args.format == "json":
        print(json.dumps(outcome))
        return
    err = sys.stderr
    if not args.quiet:
        print(f"→ {outcome['method']} {outcome['url']}", file=err)
        for line in timeline.lines():
            print(line, file=err)
    if code == EXIT_NO_RESPONSE:
        print(f"error: {outcome['error']}: {outcome['message']}", file=err)
        return
    if not args.quiet:
        waited = outcome.get("total_wait_s") or 0.0
        print(
            f"← {outcome['status']} {outcome['reason']} after {outcome['attempts']} attempt(s), "
            f"{outcome['elapsed_s']:.3f} s (waited {waited:.3f} s), "
            f"request id {outcome['request_id']}", file=err,
        )
    if args.include:
        for name, value in outcome["headers"].items():
            print(f"{name}: {value}")
        print()
    sys.stdout.write(outcome["body"])
    if outcome["body"] and not outcome["body"].endswith("\n"):
        sys.stdout.write("\n")


def run_request(args: argparse.Namespace) -> int:
    """Send the request ``args`` describes; print the timeline and the response."""
    try:
        headers = _headers(args.header)
        body = _body(args)
        auth = parse_auth(args.auth) if args.auth else None
        breaker = _breaker(args.breaker)
        limiter = TokenBucketRateLimiter(rate=args.rate, burst=1) if args.rate else None
        if args.repeat < 1:
            raise CLIError(f"--repeat must be >= 1, got {args.repeat}")
        config = ClientConfig(
            timeout=args.timeout, retry_attempts=args.retries,
            **({"total_timeout": args.total_timeout} if args.total_timeout else {}),
        )
    except (CLIError, HTTPClientError) as exc:
        print(f"request: {exc}", file=sys.stderr)
        return EXIT_USAGE

    async def go() -> int:
        worst = EXIT_OK
        timeline = _Timeline()
        async with AsyncHTTPClient(
            config=config, auth=auth, rate_limiter=limiter, circuit_breaker=breaker,
            observers=[timeline],
        ) as client:
            for _ in range(args.repeat):
                timeline.reset()
                code, outcome = await _one(client, args, headers, body, timeline)
                _show(code, outcome, timeline, args)
                worst = max(worst, code)
        return worst

    return asyncio.run(go())

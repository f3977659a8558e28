"""Hedging inside the pipeline: race an attempt against delayed copies (a transport mixin)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import httpx

from .observe.events import HedgeFired, Observer, emit
from .observe.redact import redact_url
from .policies.budget import RetryBudget
from .policies.hedging import HedgingPolicy, LatencyTracker
from .policies.retry import RetryPolicy

if TYPE_CHECKING:
    from .policies.breaker import CircuitBreaker
    from .policies.limiter import RateLimiter

__all__: list[str] = []

_log = logging.getLogger("httpx_resilience.retry")


class _Hedging:
    """The hedged attempt group of :class:`~httpx_resilience.ResilientTransport`."""

    observers: tuple[Observer, ...]
    retry_budget: RetryBudget | None
    _trackers: dict[str, LatencyTracker]

    if TYPE_CHECKING:

        async def _attempt(
            self,
            request: httpx.Request,
            timeout: float | None,
            phase: str,
            stream_mode: bool,
            breaker: CircuitBreaker | None,
        ) -> httpx.Response: ...

    def _tracker(self, key: str) -> LatencyTracker:
        tracker = self._trackers.get(key)
        if tracker is None:
            if len(self._trackers) >= 1024:
                self._trackers.pop(next(iter(self._trackers)))
            tracker = self._trackers[key] = LatencyTracker()
        return tracker

    async def _hedged(
        self,
        request: httpx.Request,
        timeout: float | None,
        phase: str,
        stream_mode: bool,
        breaker: CircuitBreaker | None,
        limiter: RateLimiter | None,
        key: str,
        hedging: HedgingPolicy,
        policy: RetryPolicy,
        request_id: str | None,
    ) -> tuple[httpx.Response, int]:
        """Race the attempt against up to ``max_hedges`` delayed copies; the first good answer wins.

        A hedge starts when the running attempts have not answered after the
        delay, or at once when one fails. Hedges are paid from the retry budget
        and take limiter permits; losers are cancelled (their connections are
        dropped by the inner transport) and their breaker permits released.
        Returns the winning response and the number of hedges fired; when every
        attempt fails, the last failure is raised (or its response returned).
        """
        loop_tasks: set[asyncio.Task[httpx.Response]] = set()
        delay = self._tracker(key).next_delay(hedging)
        fired = 0
        budget = self.retry_budget

        async def one(first: bool) -> httpx.Response:
            if not first and limiter is not None:
                await limiter.acquire()
            return await self._attempt(request, timeout, phase, stream_mode, breaker)

        def launch(first: bool) -> None:
            loop_tasks.add(asyncio.ensure_future(one(first)))

        def can_hedge() -> bool:
            return fired < hedging.max_hedges and (budget is None or budget.try_spend(key))

        launch(True)
        refused = False  # the budget said no: stop hedging for this group
        last_response: httpx.Response | None = None
        last_exc: BaseException | None = None
        try:
            while loop_tasks:
                wait = delay if fired < hedging.max_hedges and not refused else None
                done, _ = await asyncio.wait(
                    loop_tasks, timeout=wait, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    if can_hedge():
                        fired += 1
                        self._hedge_fired(request, request_id, key, fired, delay)
                        launch(False)
                    else:
                        refused = True
                    continue
                for task in done:
                    loop_tasks.discard(task)
                    exc = task.exception()
                    if exc is None:
                        response = task.result()
                        if response.status_code not in policy.statuses:
                            if last_response is not None:
                                await last_response.aclose()
                            return response, fired
                        if last_response is not None:
                            await last_response.aclose()
                        last_response, last_exc = response, None
                    else:
                        last_exc = exc
                if not loop_tasks and not refused and can_hedge():
                    fired += 1
                    self._hedge_fired(request, request_id, key, fired, 0.0)
                    launch(False)
        finally:
            for task in loop_tasks:
                task.cancel()
            for task in loop_tasks:
                try:
                    leftover = await task
                except BaseException:  # losers' errors do not matter
                    continue
                await leftover.aclose()
        if last_exc is not None:
            raise last_exc
        assert last_response is not None
        return last_response, fired

    def _hedge_fired(
        self, request: httpx.Request, request_id: str | None, key: str, n: int, delay: float
    ) -> None:
        _log.debug(
            "Hedging %s %s: attempt still running after %.3f s, starting hedge %d",
            request.method, redact_url(request.url), delay, n,
        )
        if self.observers:
            emit(
                self.observers,
                HedgeFired(request_id, request.method, redact_url(request.url), key, n, delay),
            )

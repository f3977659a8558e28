"""Hedging inside the pipeline: race an attempt against delayed copies of it.

:class:`Hedger` runs one attempt of a request as a group: the first copy
starts at once, another starts when the running ones have not answered after
the hedging delay (fixed, or adaptive from the host's latency tracker), or at
once when one fails. The first good answer wins; the losers are cancelled
(their connections are dropped by the inner transport) and their breaker
permits released. Hedges are paid from the retry budget and take limiter
permits, so hedging cannot multiply the load on a struggling upstream.

Every copy lives within the request's total deadline: a hedge waits for its
limiter permit only as long as the deadline allows, gets what is left of it
as its timeout, and is not started at all once the deadline has passed. A
failure the retry policy would not retry (a response over its size cap, say)
ends the race at once, as it would end the retry loop: another copy would
only fail the same way.
"""

from __future__ import annotations

import asyncio

import httpx

from ..policies.budget import RetryBudget
from ..policies.hedging import HedgingPolicy, LatencyTracker
from ._attempt import AttemptRunner, admit_hedge
from ._report import Reporter
from ._state import RequestState

__all__ = ["Hedger"]

# Latency trackers kept at most (one per host; the oldest goes first).
_MAX_TRACKERS = 1024


class Hedger:
    """Races attempts of one request; keeps a latency tracker per host for adaptive delays.

    Args:
        runner: sends each copy (breaker, attempt timeout, inner transport).
        reporter: announces each hedge (log line and ``HedgeFired``).
        budget: the retry budget hedges are paid from (``None``: unlimited).
    """

    __slots__ = ("_trackers", "budget", "reporter", "runner")

    def __init__(
        self, runner: AttemptRunner, reporter: Reporter, budget: RetryBudget | None
    ) -> None:
        self.runner = runner
        self.reporter = reporter
        self.budget = budget
        self._trackers: dict[str, LatencyTracker] = {}

    def tracker(self, key: str) -> LatencyTracker:
        """The latency tracker of host ``key`` (created on first use)."""
        tracker = self._trackers.get(key)
        if tracker is None:
            if len(self._trackers) >= _MAX_TRACKERS:
                self._trackers.pop(next(iter(self._trackers)))
            tracker = self._trackers[key] = LatencyTracker()
        return tracker

    async def race(
        self, s: RequestState, hedging: HedgingPolicy, timeout: float | None, phase: str
    ) -> httpx.Response:
        """Race the attempt against up to ``max_hedges`` delayed copies; the first good answer wins.

        A copy's answer is good when its status is not one the retry policy
        retries. Adds the hedges fired to ``s.hedges``. When every copy fails,
        the last failure is raised (or its response returned).
        """
        runner, budget, key = self.runner, self.budget, s.key
        clock, deadline, policy = runner.clock, s.deadline, s.policy
        statuses = policy.statuses
        tasks: set[asyncio.Task[httpx.Response]] = set()
        delay = self.tracker(key).next_delay(hedging)
        fired = 0

        async def one(first: bool) -> httpx.Response:
            if first:  # the retry loop admitted it (limiter, deadline)
                return await runner.run(s, timeout, phase)
            return await runner.run(s, *await admit_hedge(s, clock))

        def launch(first: bool) -> None:
            tasks.add(asyncio.ensure_future(one(first)))

        def can_hedge() -> bool:
            if deadline is not None and clock.monotonic() >= deadline:
                return False  # a copy started now could only wait and fail
            if fired >= hedging.max_hedges:
                return False
            if budget is not None and not budget.try_spend(key):
                self.reporter.budget_refused(s, "hedge")
                return False
            return True

        launch(True)
        refused = False  # the budget said no: stop hedging for this group
        last_response: httpx.Response | None = None
        last_exc: BaseException | None = None
        try:
            while tasks:
                wait = delay if fired < hedging.max_hedges and not refused else None
                done, _ = await asyncio.wait(
                    tasks, timeout=wait, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    if can_hedge():
                        fired += 1
                        self.reporter.hedge_fired(s, fired, delay)
                        launch(False)
                    else:
                        refused = True
                    continue
                ordered = list(done)
                for i, task in enumerate(ordered):
                    tasks.discard(task)
                    exc = task.exception()
                    if exc is None:
                        response = task.result()
                        if last_response is not None:
                            await last_response.aclose()
                        if response.status_code not in statuses:
                            tasks.update(ordered[i + 1 :])  # closed by the clean-up below
                            return response
                        last_response, last_exc = response, None
                        continue
                    last_exc = exc
                    if not policy.should_retry_exception(
                        exc, s.request.method, idempotency_key=s.idempotent
                    ):
                        # Final, as the retry loop would find: another copy would fail alike.
                        tasks.update(ordered[i + 1 :])
                        if last_response is not None:
                            await last_response.aclose()
                        raise exc
                if not tasks and not refused and can_hedge():
                    fired += 1
                    self.reporter.hedge_fired(s, fired, 0.0)
                    launch(False)
        finally:
            s.hedges += fired
            for task in tasks:
                task.cancel()
            for task in tasks:
                try:
                    leftover = await task
                except BaseException:  # losers' errors do not matter
                    continue
                await leftover.aclose()
        if last_exc is not None:
            if last_response is not None:
                # an earlier copy's retryable status, superseded by a later failure: a
                # streamed one still holds its connection
                await last_response.aclose()
            raise last_exc
        assert last_response is not None
        return last_response

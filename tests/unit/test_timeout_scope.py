"""The attempt's cancellation scope keeps asyncio.timeout's rules, with one timer per loop."""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
import time
import weakref

import pytest

from httpx_resilience.pipeline import _timeout
from httpx_resilience.pipeline._timeout import timeout_scope

pytestmark = pytest.mark.skipif(sys.version_info < (3, 11), reason="3.10 uses anyio.fail_after")

# Real waits here are the scope's own subject: a few milliseconds each.
FOREVER = 3600.0


async def test_expiry_raises_timeout_error_chained_to_the_cancellation() -> None:
    """A body still running at expiry is cancelled; the scope raises TimeoutError."""
    with pytest.raises(TimeoutError) as info, timeout_scope(0.01):
        await asyncio.Event().wait()
    assert isinstance(info.value.__cause__, asyncio.CancelledError)
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0  # the scope's own cancel was undone


async def test_a_body_that_finishes_in_time_is_untouched() -> None:
    """No expiry: the body runs to its end and the next await is not hit by a stray cancel."""
    scope = timeout_scope(FOREVER)
    with scope:
        await asyncio.sleep(0)
    assert scope._done and scope._task is None
    await asyncio.sleep(0)
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


async def test_an_outside_cancellation_stays_a_cancellation() -> None:
    """Cancelling the task from outside is not turned into a TimeoutError."""
    entered = asyncio.Event()

    async def body() -> None:
        with timeout_scope(FOREVER):
            entered.set()
            await asyncio.Event().wait()

    task = asyncio.ensure_future(body())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_an_outside_cancellation_at_expiry_still_cancels() -> None:
    """When the caller cancels in the same loop turn as the expiry, its cancellation wins."""
    loop = asyncio.get_running_loop()

    async def body() -> None:
        task = asyncio.current_task()
        assert task is not None
        scope = timeout_scope(FOREVER)
        with scope:

            def expire_and_cancel() -> None:
                scope._expire()  # the timer fires...
                task.cancel()  # ...and the caller cancels before the task runs again

            loop.call_soon(expire_and_cancel)
            await asyncio.Event().wait()

    with pytest.raises(asyncio.CancelledError):
        await asyncio.ensure_future(body())


async def test_an_error_inside_the_scope_passes_through() -> None:
    """Exceptions other than the scope's cancellation are not touched."""
    with pytest.raises(KeyError), timeout_scope(FOREVER):
        raise KeyError("x")


def test_outside_a_task_is_a_clear_error() -> None:
    """In a loop callback (no task) the scope refuses, as asyncio.timeout does."""
    loop = asyncio.new_event_loop()
    errors: list[RuntimeError] = []

    def callback() -> None:
        try:
            timeout_scope(1.0)
        except RuntimeError as exc:
            errors.append(exc)
        loop.stop()

    loop.call_soon(callback)
    loop.run_forever()
    loop.close()
    assert errors and "inside an asyncio task" in str(errors[0])


async def test_concurrent_scopes_expire_in_deadline_order() -> None:
    """Scopes sharing the loop's one timer each expire at their own deadline, not before."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    ended: dict[str, float] = {}

    async def run(name: str, seconds: float) -> None:
        try:
            with timeout_scope(seconds):
                await asyncio.Event().wait()
        except TimeoutError:
            ended[name] = loop.time() - start

    async def finishes(name: str) -> None:
        with timeout_scope(0.01):
            await asyncio.sleep(0.001)
        ended[name] = -1.0  # finished in time: never cancelled

    # The later deadline is registered first: the timer must move earlier for the second.
    await asyncio.gather(run("slow", 0.08), run("fast", 0.02), finishes("ok"), run("mid", 0.05))
    assert ended["ok"] == -1.0
    assert 0.02 <= ended["fast"] < ended["mid"] < ended["slow"]
    assert ended["mid"] >= 0.05 and ended["slow"] >= 0.08


async def test_finished_scopes_do_not_pile_up() -> None:
    """Thousands of scopes that finish in time leave a heap bounded by the clean-up rule."""
    deadlines = _timeout._deadlines_of(asyncio.get_running_loop())
    for _ in range(5000):
        with timeout_scope(FOREVER):
            pass
    assert len(deadlines) <= 2 * _timeout._COMPACT_AFTER + 2


async def test_a_finished_scope_lets_go_of_its_task() -> None:
    """The heap keeps finished scopes for a while; they must not keep tasks (and responses) alive."""

    async def body() -> bytes:
        with timeout_scope(FOREVER):
            return b"x" * 1000

    task = asyncio.ensure_future(body())
    await task
    ref = weakref.ref(task)
    del task
    for _ in range(3):  # let the loop drop its own callbacks that still name the task
        await asyncio.sleep(0)
    gc.collect()
    assert ref() is None


def test_each_event_loop_has_its_own_timer() -> None:
    """Loops in different threads never share deadlines (nor touch each other's heap)."""
    seen: list[object] = []

    def in_thread() -> None:
        async def body() -> None:
            with timeout_scope(FOREVER):
                seen.append(_timeout._deadlines_of(asyncio.get_running_loop()))
            with pytest.raises(TimeoutError), timeout_scope(0.005):
                await asyncio.Event().wait()

        asyncio.run(body())

    threads = [threading.Thread(target=in_thread) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(seen) == 2 and seen[0] is not seen[1]


def test_uvloop_loops_get_their_own_timer() -> None:
    """Under uvloop (the fast extra) the shared timer works as under asyncio's loop."""
    uvloop = pytest.importorskip("uvloop")

    async def body() -> bool:
        with timeout_scope(FOREVER):
            await asyncio.sleep(0)
        try:
            with timeout_scope(0.005):
                await asyncio.Event().wait()
        except TimeoutError:
            return True
        return False

    assert uvloop.run(body())


async def test_expiry_does_not_cancel_a_task_already_being_cancelled() -> None:
    """A cancellation pending at expiry is not doubled; if it is swallowed, expiry follows later."""
    loop = asyncio.get_running_loop()
    caught: list[int] = []

    async def body() -> None:
        task = asyncio.current_task()
        assert task is not None
        with timeout_scope(0.005):
            # Another party's cancel (due at 4 ms) and the expiry (5 ms) come due in the
            # same loop turn: a callback blocks the loop past both.
            loop.call_at(loop.time() + 0.001, time.sleep, 0.01)
            loop.call_at(loop.time() + 0.004, task.cancel)
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                caught.append(task.cancelling())  # exactly one request: not doubled
                task.uncancel()  # swallowed: the scope must still end the body
            await asyncio.Event().wait()

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(body(), 5)
    assert caught == [1]


async def test_a_disarmed_scope_does_not_cancel_the_rest_of_its_body() -> None:
    """After disarm() (the response is read; only its close is left) the expiry cancels nothing."""
    from httpx_resilience.pipeline._timeout import disarm

    with timeout_scope(0.02) as scope:
        disarm(scope)
        await asyncio.sleep(0.06)  # well past the expiry: no TimeoutError
    with pytest.raises(TimeoutError), timeout_scope(0.02):
        await asyncio.sleep(0.06)

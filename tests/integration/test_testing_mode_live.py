"""The testing switch over real sockets: a ChaosServer counts the attempts, a counting
clock (the real one, recording what it is asked to sleep) proves no wait was asked for."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import httpx
import pytest

from httpx_resilience import (
    AsyncHTTPClient,
    ClientConfig,
    ResilienceInfo,
    ResilientTransport,
    RetryExhaustedError,
)
from httpx_resilience.clock import SystemClock
from httpx_resilience.testing import ChaosServer, FakeClock, Fault, set_testing, testing_mode

# Ten seconds of backoff, then twenty, forty...: a test that slept would time out.
SLOW = ClientConfig(
    timeout=5.0, retry_attempts=5, retry_backoff_factor=10.0, retry_jitter="none",
    retry_max_delay=60.0,
)


@pytest.fixture(autouse=True)
def switched_off() -> Iterator[None]:
    set_testing(False)
    yield
    set_testing(False)


class CountingClock(SystemClock):
    """The real clock, recording every sleep it is asked for."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await super().sleep(seconds)


def assert_no_wait(clock: CountingClock) -> None:
    """The pipeline asked for no wait at all (a zero sleep is a yield to the loop)."""
    assert all(s == 0 for s in clock.sleeps), clock.sleeps


def info_of(response: httpx.Response) -> ResilienceInfo:
    info = response.extensions["resilience"]
    assert isinstance(info, ResilienceInfo)
    return info


async def test_async_http_client_retries_at_once_and_stops_at_the_cap(
    chaos_server: ChaosServer,
) -> None:
    """AsyncHTTPClient, backoff factor 10: 503, 503, 200 succeeds on the third attempt
    with no wait; an endless 503 stops after the switch's three attempts."""
    chaos_server.route("/flaky", statuses=[503, 503, 200])
    chaos_server.route("/down", status=503)
    clock = CountingClock()
    set_testing(True, attempts=3)
    async with AsyncHTTPClient(chaos_server.url, config=SLOW, clock=clock) as client:
        ok = await client.get("/flaky")
        with pytest.raises(RetryExhaustedError) as info:
            await client.get("/down")
    assert ok.status_code == 200 and ok.attempts == 3
    assert chaos_server.count("/flaky") == 3
    assert chaos_server.count("/down") == 3 and info.value.attempts == 3
    assert_no_wait(clock)


async def test_plain_httpx_over_the_transport_is_capped_without_waiting(
    chaos_server: ChaosServer,
) -> None:
    """httpx.AsyncClient(transport=ResilientTransport(...)): attempts capped at two,
    the outcome shows no wait, the server counted two requests."""
    chaos_server.route("/down", status=503)
    clock = CountingClock()
    transport = ResilientTransport(config=SLOW, clock=clock)
    with testing_mode(attempts=2):
        async with httpx.AsyncClient(transport=transport) as client:
            response = await client.get(chaos_server.url_for("/down"))
    info = info_of(response)
    assert response.status_code == 503 and chaos_server.count("/down") == 2
    assert (info.attempts, info.total_wait, info.stop_reason) == (2, 0.0, "attempts")
    assert_no_wait(clock)


async def test_retry_after_30_is_answered_without_waiting(chaos_server: ChaosServer) -> None:
    """A 503 with Retry-After: 30 is retried at once; the outcome still reports the 30 s."""
    chaos_server.route("/busy", steps=[Fault(status=503, retry_after=30), Fault()])
    clock = CountingClock()
    transport = ResilientTransport(config=SLOW, clock=clock)
    with testing_mode(attempts=3):
        async with httpx.AsyncClient(transport=transport) as client:
            response = await client.get(chaos_server.url_for("/busy"))
    info = info_of(response)
    assert response.status_code == 200 and chaos_server.count("/busy") == 2
    assert info.retry_after == 30.0 and info.total_wait == 0.0
    assert_no_wait(clock)


async def test_a_task_inside_testing_mode_and_one_outside_differ(chaos_server: ChaosServer) -> None:
    """Two concurrent requests through one transport: the one inside testing_mode()
    retries at once, the one outside waits the server's 30 s (on a fake clock)."""
    for path in ("/inside", "/outside"):
        chaos_server.route(path, steps=[Fault(status=503, retry_after=30, latency=0.05), Fault()])
    transport = ResilientTransport(config=SLOW, clock=FakeClock())
    both_sent = asyncio.Barrier(2) if hasattr(asyncio, "Barrier") else None

    async def get(client: httpx.AsyncClient, path: str) -> ResilienceInfo:
        if both_sent is not None:
            await both_sent.wait()  # both requests are in flight together
        return info_of(await client.get(chaos_server.url_for(path)))

    async def inside(client: httpx.AsyncClient) -> ResilienceInfo:
        with testing_mode(attempts=4):
            return await get(client, "/inside")

    async with httpx.AsyncClient(transport=transport) as client:
        got_in, got_out = await asyncio.gather(inside(client), get(client, "/outside"))
    assert got_in.total_wait == 0.0 and got_out.total_wait == 30.0
    assert got_in.attempts == got_out.attempts == 2


async def test_set_testing_from_another_thread_applies(chaos_server: ChaosServer) -> None:
    """The switch set by a worker thread caps this loop's requests; a request made in
    that thread's own loop after the switch is cleared here runs normally again."""
    chaos_server.route("/down", status=503)
    clock = CountingClock()
    worker = threading.Thread(target=set_testing, args=(True,), kwargs={"attempts": 2})
    worker.start()
    worker.join()
    async with AsyncHTTPClient(chaos_server.url, config=SLOW, clock=clock) as client:
        with pytest.raises(RetryExhaustedError):
            await client.get("/down")
    assert chaos_server.count("/down") == 2
    assert_no_wait(clock)

    set_testing(False)
    fake = FakeClock()

    def in_thread() -> None:
        async def run() -> None:
            transport = ResilientTransport(config=SLOW, clock=fake)
            async with httpx.AsyncClient(transport=transport) as client:
                await client.get(chaos_server.url_for("/down"))

        asyncio.run(run())

    other = threading.Thread(target=in_thread)
    other.start()
    other.join()
    assert chaos_server.count("/down") == 2 + 6  # the config's six attempts
    assert fake.sleeps == [10.0, 20.0, 40.0, 60.0, 60.0]


async def test_oauth2_token_retries_do_not_sleep_either() -> None:
    """The token endpoint's own retries (1 s, 2 s backoff) are zero, and capped, in testing mode."""
    from httpx_resilience import OAuth2ClientCredentials
    from httpx_resilience.exceptions import AuthenticationError

    clock = CountingClock()
    with ChaosServer() as server:
        server.route("/token", statuses=[503, 503, 503, 200])
        server.route("/api", status=200)
        auth = OAuth2ClientCredentials(
            server.url_for("/token"), "client", "a-client-secret", clock=clock,
            retry_attempts=4, retry_backoff=1.0,
        )
        with testing_mode(True, attempts=3):
            async with httpx.AsyncClient(auth=auth) as client:
                with pytest.raises(AuthenticationError, match="after 3 attempt"):
                    await client.get(server.url_for("/api"))
        assert server.count("/token") == 3  # capped at the switch's 3, not the handler's 4
    assert_no_wait(clock)

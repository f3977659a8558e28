"""pytest plugin: ``chaos_server`` fixtures and the ``resilience_testing`` switch.

Registered through the ``pytest11`` entry point, so installing httpx-resilience
is enough. Every pytest session of every project that has the package
installed loads this module, so it imports nothing but pytest: the server and
the testing switch are imported when a fixture is first used.

- ``chaos_server``: a fresh server per test, stopped afterwards.
- ``chaos_server_session``: one server for the whole session; tests sharing
  it should use their own paths (query-string faults are counted per path and
  query, so ``/test-a?status=503,200`` and ``/test-b?status=503,200`` do not
  interfere), and must not rely on :meth:`ChaosServer.reset`.
- ``resilience_testing``: testing mode for one test (no backoff, no
  ``Retry-After`` or limiter wait, one attempt); the marker
  ``@pytest.mark.resilience_testing(attempts=3)`` allows more attempts.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, cast

import pytest

if TYPE_CHECKING:
    from httpx_resilience.policies._testing_mode import TestingMode
    from httpx_resilience.testing.chaos import ChaosServer

__all__ = ["chaos_server", "chaos_server_session", "resilience_testing"]

MARKER = "resilience_testing"


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker, so ``--strict-markers`` accepts it."""
    config.addinivalue_line(
        "markers",
        f"{MARKER}(attempts=1): the attempts each call may make under the "
        "resilience_testing fixture (retries included)",
    )


def _started() -> ChaosServer:
    from httpx_resilience.testing.chaos import ChaosServer

    return ChaosServer().start()


@pytest.fixture
def chaos_server() -> Iterator[ChaosServer]:
    """A started :class:`ChaosServer` for one test; stopped (connections closed) after it."""
    server = _started()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def chaos_server_session() -> Iterator[ChaosServer]:
    """One started :class:`ChaosServer` shared by the whole test session."""
    server = _started()
    try:
        yield server
    finally:
        server.stop()


def _attempts(request: pytest.FixtureRequest) -> int:
    """The fixture's parameter (indirect parametrization), else the marker's, else 1."""
    param = getattr(request, "param", None)
    if param is not None:
        return int(param)
    marker = request.node.get_closest_marker(MARKER)
    if marker is None:
        return 1
    attempts: int = marker.kwargs.get("attempts", marker.args[0] if marker.args else 1)
    return attempts


@pytest.fixture
def resilience_testing(request: pytest.FixtureRequest) -> Iterator[TestingMode]:
    """Testing mode for this test: every wait is zero, each call makes at most
    ``attempts`` attempts (1 unless ``@pytest.mark.resilience_testing(attempts=n)``
    or ``@pytest.mark.parametrize("resilience_testing", [n], indirect=True)``).

    It holds for the test and the tasks and ``contextvars``-copying threads it
    starts (a context variable), and is undone after the test; for threads of
    your own, call :func:`httpx_resilience.testing.set_testing`.
    """
    from httpx_resilience.policies._testing_mode import testing_mode

    with testing_mode(True, attempts=_attempts(request)) as mode:
        yield cast("TestingMode", mode)  # on, as asked: never None

"""pytest plugin: ``chaos_server`` fixtures, each a started :class:`ChaosServer`.

Registered through the ``pytest11`` entry point, so installing httpx-resilience
is enough. Importing this module only defines fixtures: the server module is
imported when a fixture is first used.

- ``chaos_server``: a fresh server per test, stopped afterwards.
- ``chaos_server_session``: one server for the whole session; tests sharing
  it should use their own paths (query-string faults are counted per path and
  query, so ``/test-a?status=503,200`` and ``/test-b?status=503,200`` do not
  interfere), and must not rely on :meth:`ChaosServer.reset`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from httpx_resilience.testing.chaos import ChaosServer

__all__ = ["chaos_server", "chaos_server_session"]


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

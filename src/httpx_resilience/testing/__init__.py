"""Tools for testing code that uses httpx-resilience (or plain httpx).

- :class:`ChaosServer`: a real HTTP/1.1 server on loopback with programmable
  faults (status sequences, latency, hangs, resets, truncated and dripping
  bodies, silent closes, malformed JSON, rate limits) and request accounting,
  including upload checks (:func:`upload_headers`) and once-only ids.
- :class:`FakeClock`: a clock whose ``sleep`` advances time at once.
- The testing switch: :func:`set_testing` (the whole process) and
  :func:`testing_mode` (the current task or thread) make every backoff,
  ``Retry-After`` wait and limiter wait zero and cap the attempts
  (:class:`TestingMode` says how many), so a test suite never sleeps.
- The pytest plugin (:mod:`httpx_resilience.testing.pytest_plugin`) provides
  the ``chaos_server``, ``chaos_server_session`` and ``resilience_testing``
  fixtures.

The names are imported on first use: pytest imports this package for every
run (through the plugin entry point), and most runs never start a server.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..policies._testing_mode import TestingMode, set_testing, testing_mode
    from .chaos import (
        ChaosServer,
        Fault,
        FaultMix,
        RecordedHeaders,
        RecordedRequest,
        ResetMode,
        Route,
        UploadMismatch,
        upload_headers,
    )
    from .clock import FakeClock

__all__ = [
    "ChaosServer",
    "FakeClock",
    "Fault",
    "FaultMix",
    "RecordedHeaders",
    "RecordedRequest",
    "ResetMode",
    "Route",
    "TestingMode",
    "UploadMismatch",
    "set_testing",
    "testing_mode",
    "upload_headers",
]

_SWITCH = "..policies._testing_mode"
#: Each name, by the module that defines it (imported on first access).
_HOMES: dict[str, str] = {
    **dict.fromkeys(__all__, ".chaos"),
    "FakeClock": ".clock",
    "TestingMode": _SWITCH,
    "set_testing": _SWITCH,
    "testing_mode": _SWITCH,
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    if home == _SWITCH:  # documented here, defined in a private module
        value.__module__ = __name__
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

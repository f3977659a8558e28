"""Tools for testing code that uses httpx-resilience (or plain httpx).

- :class:`ChaosServer`: a real HTTP/1.1 server on loopback with programmable
  faults (status sequences, latency, hangs, resets, truncated and dripping
  bodies, silent closes, malformed JSON, rate limits) and request accounting,
  including upload checks (:func:`upload_headers`) and once-only ids.
- :class:`FakeClock`: a clock whose ``sleep`` advances time at once.
- The pytest plugin (:mod:`httpx_resilience.testing.pytest_plugin`) provides
  the ``chaos_server`` and ``chaos_server_session`` fixtures.

The names are imported on first use: pytest imports this package for every
run (through the plugin entry point), and most runs never start a server.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    "UploadMismatch",
    "upload_headers",
]

_HOMES = {name: ".clock" if name == "FakeClock" else ".chaos" for name in __all__}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

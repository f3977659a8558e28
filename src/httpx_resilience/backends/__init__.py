"""Shared state for the policies: in-process, or on Redis across processes and hosts.

* :class:`MemoryBackend` — the contract on in-process state;
* :class:`RedisBackend` — the contract as Lua scripts on Redis (the optional
  ``redis`` extra, imported only when a backend is built);
* :class:`SharedBackend` — the contract itself: a few atomic operations;
* :class:`SharedStateUnavailableError` — Redis is down and ``fail_mode="closed"``.

The modules: ``_errors`` (``BackendDown``, the public error, ``on_backend_down``),
``_events`` (fallback and latency events), ``_contract``, ``_memory``, ``_redis``,
and the scripts in ``lua/``.
"""

from ._contract import Grant, SharedBackend
from ._errors import FailMode, SharedStateUnavailableError, on_backend_down
from ._events import BackendFallbackEntered, BackendFallbackLeft, BackendScriptRan
from ._memory import MemoryBackend
from ._redis import RedisBackend

__all__ = [
    "BackendFallbackEntered",
    "BackendFallbackLeft",
    "BackendScriptRan",
    "FailMode",
    "Grant",
    "MemoryBackend",
    "RedisBackend",
    "SharedBackend",
    "SharedStateUnavailableError",
    "on_backend_down",
]

"""The circuit breaker: stop calling an upstream that keeps failing, probe it, recover.

The transport uses it in three steps, all synchronous and cheap::

    permit = breaker.for_key(host).acquire()   # raises when open: nothing is sent
    ...                                        # send the request
    permit.success(duration)                   # or .failure(duration) or .release()

Any other async code can use :meth:`CircuitBreaker.call` (sync code
:meth:`CircuitBreaker.call_sync`; one breaker may serve threads and event
loops at once: its state changes under a lock), or drive the
breaker by hand (seed 003): ``raise_if_open()`` (or ``can_execute()``)
before the work, ``record_success()`` / ``record_failure(exc)`` after.

The modules, each importing only those listed before it:

* ``_settings`` — :class:`BreakerSettings` (validated), the edge's option
  checks, the read-only ``Setting`` attributes;
* ``_windows`` — the count and time sliding windows of the rate rules;
* ``_machine`` — :class:`CircuitState` and ``BreakerMachine``, the pure
  transition rules (no clock, no I/O);
* ``_events`` — :class:`BreakerTransition`, the transition log line and the
  listeners;
* ``_failures`` — what counts as a failure (exceptions, statuses, predicate);
* ``_permit`` — :class:`BreakerPermit`, the right to make one call;
* ``_registry`` — the bounded LRU of per-key children, and how a child is made;
* ``_sync`` — ``call_sync``: the breaker around a plain function (threads);
* ``_manual`` — the hand-driven methods (``can_execute``, ``raise_if_open``,
  ``record_success``, ``record_failure``, ``force_open``, ...), a mixin of
  the breaker;
* ``_circuit`` — :class:`CircuitBreaker`, the edge that ties them together.
"""

from ._circuit import CircuitBreaker
from ._events import BreakerTransition
from ._failures import FailurePredicate as FailurePredicate
from ._machine import CircuitState
from ._permit import BreakerPermit
from ._settings import BreakerSettings as BreakerSettings

__all__ = ["BreakerPermit", "BreakerTransition", "CircuitBreaker", "CircuitState"]

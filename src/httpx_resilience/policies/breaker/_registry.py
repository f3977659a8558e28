"""A circuit breaker's per-key children: a bounded LRU that evicts healthy ones first.

With ``scope="host"``, :meth:`CircuitBreaker.for_key
<httpx_resilience.policies.breaker.CircuitBreaker.for_key>` gives each key
(a host) its own child breaker. Keys are unbounded in principle (a client
may talk to any host), so the children live in an LRU of ``max_keys``; an
evictable child (a CLOSED one, which loses nothing worth keeping) goes
first, the least recently used of any state only when none is evictable.
:func:`spawn_child` makes a child: the parent's settings, rules, clock and
listeners, a fresh state machine (with its own lock) and, with a backend,
its own shared state named ``<parent>/<key>``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar, cast

from ._machine import BreakerMachine

__all__ = ["child_for", "spawn_child"]

C = TypeVar("C")


def child_for(
    children: OrderedDict[str, C],
    key: str,
    max_keys: int,
    spawn: Callable[[str], C],
    evictable: Callable[[C], bool],
) -> C:
    """The child for ``key`` in ``children``, spawned (evicting one when full) if missing.

    Args:
        children: the LRU, least recently used first; updated in place.
        key: the key asked for; it becomes the most recently used.
        max_keys: how many children ``children`` may hold (≥ 1).
        spawn: makes the child for a new key.
        evictable: whether a child may be evicted before the others.
    """
    child = children.get(key)
    if child is not None:
        children.move_to_end(key)
        return child
    if len(children) >= max_keys:
        victim = next((k for k, c in children.items() if evictable(c)), None)
        if victim is None:
            victim = next(iter(children))
        del children[victim]
    child = spawn(key)
    children[key] = child
    return child


def spawn_child(parent: C, key: str) -> C:
    """A child breaker of ``parent`` for ``key`` (see the module doc)."""
    p = cast(Any, parent)
    child = cast(Any, object.__new__(type(parent)))
    child.name = key
    child._machine = BreakerMachine(p._machine.settings)
    child._rules = p._rules
    child._scope = "global"
    child._max_keys = p._max_keys
    child._listeners = p._listeners  # shared on purpose: one place to observe all hosts
    child._clock = p._clock
    child._children = None
    child._manual_probes = (0, 0)
    child._backend = backend = p._backend
    child._shared = None
    if backend is not None:
        from ...backends._breaker import attach

        attach(child, backend, f"{p.name}/{key}")
    return cast(C, child)

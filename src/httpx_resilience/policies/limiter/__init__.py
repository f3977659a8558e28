"""Client-side rate limiters: a token bucket and an exact sliding window.

Both serve waiters (tasks awaiting ``acquire``, threads blocked in
``acquire_sync``) strictly first-in-first-out (a later small request never
overtakes an earlier big one) with one timer: only the waiter at the head of
the queue sleeps, on the injected clock, until it can be granted; the others
wait on a future until the head leaves. Tokens are taken only at the moment
of the grant, so a cancelled or refused waiter leaks nothing.

``max_wait`` is decided up front: the grant time of a new request is computed
from the bucket and the queue ahead of it, and a request that would wait too
long is refused at once with :class:`~httpx_resilience.RateLimiterTimeout`.
Only :meth:`RateLimiter.pause` (a server's ``Retry-After`` or rate-limit
headers) can push grants later; it re-checks the queued waiters then.

With ``backend=`` (a :class:`~httpx_resilience.backends.RedisBackend`) the
limit is shared by every process using that backend and the limiter's
``name``: the backend's script grants at once or reserves the slot, and the
caller sleeps until it (see ``_shared``).

The modules, each importing only those listed before it:

* ``_base`` — :class:`RateLimiter`, the interface, and the shared argument checks;
* ``_allowance`` — ``Allowance``, the arithmetic of a limit apart from any
  queue, and the ``Schedule`` that predicts grants;
* ``_ratelimit_headers`` — the pause asked for by a response's rate-limit headers;
* ``_shared`` — ``SharedLimit``: the path through a shared backend (``backend=``),
  one round trip per grant (threads too, with a sync client), and ``fail_mode``
  when the backend is down;
* ``_waiters`` — the queue's waiters, tasks and threads in one FIFO line, and
  the two waits (``acquire``'s and ``acquire_sync``'s);
* ``_queue`` — ``QueuedLimiter``: the fair FIFO queue, ``max_wait``, pauses,
  header pacing and per-key children, around an allowance;
* ``_token_bucket`` — ``TokenBucket`` and :class:`TokenBucketRateLimiter`;
* ``_sliding_window`` — ``GrantLog`` and :class:`SlidingWindowRateLimiter`.
"""

from ._base import RateLimiter
from ._sliding_window import SlidingWindowRateLimiter
from ._token_bucket import TokenBucketRateLimiter

__all__ = ["RateLimiter", "SlidingWindowRateLimiter", "TokenBucketRateLimiter"]

"""The resilience pipeline: :class:`ResilientTransport` and the parts it composes.

Where things live::

    transport.py    ResilientTransport: construction, the httpx seam, the bulkhead and
                    the retry loop, which shows the order of the stages
    _state.py       RequestState: one request's progress, handed to the parts below;
                    open_state, its start (both paths)
    _attempt.py     AttemptRunner: breaker permit → attempt timeout → inner transport;
                    the limiter's wait within the deadline
    _hedge.py       Hedger: races an attempt against delayed copies
    _classify.py    an attempt's exception or response: final, or recorded for a retry
    _decision.py    decide_retry: retry after d, or stop because r (a pure function)
    _report.py      Reporter: events, log lines, ResilienceInfo, the give-up errors
    _outcome.py     ResilienceInfo, the host key, body replay and buffering
    _checks.py      check_pipeline: settings that contradict each other
    _request_id.py  the request id and the header facts read with it
    _timeout.py     the cancellation scope of an attempt
    _sync.py        the sync path (handle_request): the loop's skeleton with blocking waits
    _sync_attempt.py  one sync attempt: breaker → clamped phase timeouts → sync inner
"""

from __future__ import annotations

from ._outcome import EXTENSION_KEY, ResilienceInfo, host_key
from .transport import ResilientTransport

__all__ = ["EXTENSION_KEY", "ResilienceInfo", "ResilientTransport", "host_key"]

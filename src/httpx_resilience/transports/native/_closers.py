"""Origins whose servers close every connection right after its response, learnt by the pool.

A server that closes its connections right after each response without
saying so (no ``Connection: close``) makes every reuse a race with its close.
Each idle connection found closed within ``_PROMPT_CLOSE`` of its response
adds 1 to its origin's score, and every event (such a close, or a successful
reuse) first multiplies the score by ``_DECAY``. At ``_PROMPT_SCORE`` — six
prompt closes with no reuse between, or a long run of mostly closes — the
origin's connections are not kept for ``_NO_REUSE_FOR`` (each request then
opens its own) rather than send the next request into a closing socket. A
server that closes now and then (a restart, a fault, a connection limit, even
every second response) keeps its connections reused.
"""

from __future__ import annotations

from typing import Final

from ._request import Origin

__all__ = ["PromptClosers"]

# A keep-alive timeout is seconds long: a close this soon after the response is not one.
_PROMPT_CLOSE: Final = 0.25
_DECAY: Final = 0.8
_PROMPT_SCORE: Final = 3.5
_NO_REUSE_FOR: Final = 60.0
_MAX_ORIGINS: Final = 1024  # remembered at most, in each table


class PromptClosers:
    """The scores and the verdicts, per origin; time comes from the caller (the loop's)."""

    __slots__ = ("_scores", "_until")

    def __init__(self) -> None:
        self._scores: dict[Origin, float] = {}  # decayed prompt closes
        self._until: dict[Origin, float] = {}  # origins not kept alive → until when

    def closed(self, origin: Origin, idle_since: float, now: float) -> None:
        """An idle connection to ``origin`` was found closed by its server."""
        if now - idle_since >= _PROMPT_CLOSE:
            return  # a keep-alive timeout, not a server that always closes
        scores = self._scores
        if len(scores) >= _MAX_ORIGINS:
            scores.clear()
        score = scores[origin] = scores.get(origin, 0.0) * _DECAY + 1.0
        if score < _PROMPT_SCORE:
            return
        del scores[origin]
        if len(self._until) >= _MAX_ORIGINS:
            self._until.clear()
        self._until[origin] = now + _NO_REUSE_FOR

    def reused(self, origin: Origin) -> None:
        """A reused connection to ``origin`` answered: its score decays."""
        scores = self._scores
        score = scores.get(origin)
        if score is not None:
            if score < 0.05:
                del scores[origin]
            else:
                scores[origin] = score * _DECAY

    def watching(self) -> bool:
        """Whether any origin has a score (else :meth:`reused` has nothing to do)."""
        return bool(self._scores)

    def refuses(self, origin: Origin, now: float) -> bool:
        """Whether ``origin``'s connections are not to be kept (its server closes at once)."""
        until = self._until.get(origin)
        if until is None:
            return False
        if now < until:
            return True
        del self._until[origin]  # try keeping its connections again
        return False

    def any_refused(self) -> bool:
        """Whether any origin is refused keep-alive now or was until lately."""
        return bool(self._until)

"""Server-driven pacing: how long to pause, read from a response's rate-limit headers.

Understood: ``RateLimit: "name";r=0;t=30`` with ``RateLimit-Policy`` (IETF
draft 08+), ``RateLimit: limit=10, remaining=0, reset=30`` (draft 07),
``RateLimit-Remaining``/``RateLimit-Reset`` (earlier drafts) and
``X-RateLimit-Remaining``/``X-RateLimit-Reset`` (reset as delta seconds or a
Unix time). Numbers are read strictly (non-negative ASCII decimals, as
``Retry-After`` is: :func:`~httpx_resilience.policies.retry.parse_decimal`).
Pure functions of ``(headers, wall clock)``; the limiter acts.
"""

from __future__ import annotations

import logging

import httpx

from ..retry import parse_decimal

__all__ = ["header_pause"]

logger = logging.getLogger("httpx_resilience.limiter")

_MAX_HEADER_PAUSE = 86_400.0
"""A rate-limit header asking for a longer pause than a day is taken as garbage."""


def _number(text: str | None) -> float | None:
    """A non-negative ASCII decimal (optionally in quotes), or ``None``.

    The same strict reader as ``Retry-After`` (:func:`parse_decimal`): no
    sign, exponent, ``inf`` or other scripts' digits; a fraction is allowed
    (``X-RateLimit-Reset-After: 1.5``). A value too large for a float is
    ``math.inf``, which the day-long sanity limit below then refuses.
    """
    if text is None:
        return None
    return parse_decimal(text.strip(" \t").strip('"'), fraction=True)


def _params(member: str) -> tuple[str, dict[str, str]]:
    """Split an RFC 8941 list member ``item;k=v;k=v`` into its item and parameters."""
    item, *rest = member.split(";")
    params: dict[str, str] = {}
    for part in rest:
        key, _, value = part.partition("=")
        params[key.strip().lower()] = value.strip()
    return item.strip().strip('"'), params


def _ratelimit_field(value: str, policy: str | None) -> float | None:
    """Seconds to pause from a ``RateLimit`` field (draft 07 or 08+), or ``None``."""
    members = [m.strip() for m in value.split(",") if m.strip()]
    if members and all("=" in m.split(";")[0] for m in members):
        # Draft 07: `limit=10, remaining=0, reset=30`.
        fields = {k.strip().lower(): v for k, _, v in (m.partition("=") for m in members)}
        if _number(fields.get("remaining")) == 0:
            return _number(fields.get("reset"))
        return None
    windows: dict[str, float] = {}
    if policy:
        for member in policy.split(","):
            name, params = _params(member)
            w = _number(params.get("w"))
            if w is not None:
                windows[name] = w
    pause: float | None = None
    for member in members:
        name, params = _params(member)
        if _number(params.get("r")) != 0:
            continue
        t = _number(params.get("t"))
        if t is None:
            t = windows.get(name)
        if t is not None:
            pause = t if pause is None else max(pause, t)
    return pause


def header_pause(headers: httpx.Headers, wall_now: float) -> float | None:
    """Seconds to pause when the response says no requests are left, else ``None``."""
    pauses: list[float] = []
    field = headers.get("ratelimit")
    if field is not None:
        found = _ratelimit_field(field, headers.get("ratelimit-policy"))
        if found is not None:
            pauses.append(found)
    if _number(headers.get("ratelimit-remaining")) == 0:
        reset = _number(headers.get("ratelimit-reset"))
        if reset is not None:
            pauses.append(reset)
    if _number(headers.get("x-ratelimit-remaining")) == 0:
        reset = _number(headers.get("x-ratelimit-reset-after"))
        if reset is None:
            reset = _number(headers.get("x-ratelimit-reset"))
            # Unix time in milliseconds or seconds (GitHub), else delta seconds.
            if reset is not None and reset > 1e12:
                reset = reset / 1000.0 - wall_now
            elif reset is not None and reset > 1e9:
                reset = reset - wall_now
        if reset is not None:
            pauses.append(reset)
    if not pauses:
        return None
    pause = max(pauses)
    if pause > _MAX_HEADER_PAUSE:
        logger.warning("ignoring a rate-limit header asking to pause for %.0f s", pause)
        return None
    return max(0.0, pause)

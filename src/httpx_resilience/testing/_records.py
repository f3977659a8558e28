"""What the chaos server saw: request headers and whole requests, as recorded.

:class:`RecordedHeaders` gives case-insensitive, read-only access to the
headers of a request; :class:`RecordedRequest` is one request (method, target,
headers, de-chunked body, arrival time and connection number) as
:class:`~httpx_resilience.testing.chaos.ChaosServer` received it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["RecordedHeaders", "RecordedRequest"]


class RecordedHeaders(Mapping[str, str]):
    """Read-only request headers with case-insensitive lookup.

    Iteration yields lower-cased names; a header sent several times is joined
    with ``", "`` (use :meth:`get_list` for the separate values). Compares
    equal to a ``dict`` with lower-cased names.

    Args:
        raw: the ``(name, value)`` pairs as received.
    """

    __slots__ = ("_map", "raw")

    def __init__(self, raw: Iterable[tuple[str, str]] = ()) -> None:
        self.raw: tuple[tuple[str, str], ...] = tuple(raw)
        merged: dict[str, str] = {}
        for name, value in self.raw:
            key = name.lower()
            merged[key] = f"{merged[key]}, {value}" if key in merged else value
        self._map = merged

    def __getitem__(self, key: str) -> str:
        return self._map[key.lower()]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._map

    def __iter__(self) -> Iterator[str]:
        return iter(self._map)

    def __len__(self) -> int:
        return len(self._map)

    def get_list(self, key: str) -> list[str]:
        """Every value sent for ``key``, in order (empty when absent)."""
        wanted = key.lower()
        return [value for name, value in self.raw if name.lower() == wanted]

    def __repr__(self) -> str:
        return f"RecordedHeaders({self._map!r})"


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the server received it.

    Args:
        method: the request method, e.g. ``"POST"``.
        path: the path without the query string.
        query: the raw query string (``""`` when none).
        headers: the request headers (case-insensitive lookup).
        body: the request body, de-chunked.
        at: :func:`time.monotonic` when the request head was read; compare two
            records to measure the client's backoff.
        connection: the serial number (from 1) of the TCP connection it came
            on; equal numbers prove keep-alive reuse.
    """

    method: str
    path: str
    query: str
    headers: RecordedHeaders
    body: bytes
    at: float
    connection: int = 0

    @property
    def target(self) -> str:
        """The path with its query string, as sent on the request line."""
        return f"{self.path}?{self.query}" if self.query else self.path

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (undecodable bytes replaced)."""
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body parsed as JSON.

        Raises:
            ValueError: when the body is not JSON.
        """
        return json.loads(self.body)

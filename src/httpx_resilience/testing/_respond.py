"""Answering one request: a :class:`Fault` turned into bytes on the wire.

:func:`_respond` writes the answer a fault describes (latency, hang, reset,
truncated or dripping body, a silent close, extra headers); :func:`_body_of` builds the body
and content type, including the default JSON body and the ``/echo`` answer.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Final

from ..clock import SYSTEM_CLOCK
from ._fault import Fault, _format_retry_after
from ._http import _REASONS, _json, _reset
from ._records import RecordedRequest

__all__ = ["_body_of", "_respond"]

_AFTER_HEADERS_PAUSE: Final = 0.02  # lets the client read the head before the RST lands


def _body_of(fault: Fault, request: RecordedRequest, n: int, status: int) -> tuple[bytes, str]:
    """The body and content type to answer ``request`` with."""
    path = request.path
    if fault.malformed_json:
        return (
            f'{{"ok": true, "path": {json.dumps(path)}, "n": {n}, "items": [1, 2,'.encode(),
            "application/json",
        )
    body = fault.body
    if isinstance(body, bytes):
        return body, "application/octet-stream"
    if isinstance(body, str):
        return body.encode(), "text/plain; charset=utf-8"
    if body is not None:
        return _json(body), "application/json"
    if fault.body_size is not None:
        size = fault.body_size
        if size < 11:
            return b"x" * size, "application/octet-stream"
        return b'{"data":"' + b"x" * (size - 11) + b'"}', "application/json"
    if path == "/echo" or path.startswith("/echo/"):
        return (
            _json(
                {
                    "method": request.method,
                    "path": path,
                    "query": request.query,
                    "headers": dict(request.headers),
                    "body": request.text,
                    "n": n,
                }
            ),
            "application/json",
        )
    payload: dict[str, Any] = {"ok": 200 <= status < 300, "path": path, "n": n}
    payload["method"] = request.method
    if status >= 300:
        payload["status"] = status
        payload["error"] = _REASONS.get(status, "Unknown")
    return _json(payload), "application/json"


async def _respond(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    request: RecordedRequest,
    fault: Fault,
    n: int,
    keep_alive: bool,
) -> bool:
    """Answer one request with ``fault``; return whether the connection stays open."""
    if fault.latency > 0:
        await SYSTEM_CLOCK.sleep(fault.latency)
    if fault.hang:
        # Read (and drop) until the client closes; stop() cancels us otherwise.
        while await reader.read(65536):
            pass
        return False
    if fault.reset == "before_headers":
        _reset(writer)
        return False
    status = fault.status
    body, content_type = _body_of(fault, request, n, status)
    if status < 200 or status in (204, 304):
        body = b""  # these statuses never carry a body (RFC 9110 §6.4.1)
    declared = len(body)
    if fault.truncate:
        declared, body = max(declared, 16), body[: declared // 2]
    if fault.reset or fault.truncate:
        keep_alive = False
    lines = [
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}",
        f"content-type: {content_type}",
        f"content-length: {declared}",
        f"x-chaos-n: {n}",
    ]
    if fault.retry_after is not None and not 200 <= status < 300:
        lines.append(f"retry-after: {_format_retry_after(fault.retry_after)}")
    if fault.headers:
        overridden = {name.lower() for name in fault.headers}
        lines = [lines[0]] + [
            line for line in lines[1:] if line.partition(":")[0] not in overridden
        ]
        lines.extend(f"{name}: {value}" for name, value in fault.headers.items())
    if not keep_alive:
        lines.append("connection: close")
    elif request.headers.get("connection", "").lower() == "keep-alive":
        lines.append("connection: keep-alive")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if request.method == "HEAD":
        body = b""  # the head still announces the length a GET would get

    if fault.reset == "after_headers":
        writer.write(head)
        await writer.drain()
        await SYSTEM_CLOCK.sleep(_AFTER_HEADERS_PAUSE)
        _reset(writer)
        return False
    if fault.drip > 0 and body:
        writer.write(head)
        await writer.drain()
        for start in range(0, len(body), fault.drip_chunk):
            await SYSTEM_CLOCK.sleep(fault.drip)
            writer.write(body[start : start + fault.drip_chunk])
            await writer.drain()
    else:
        writer.write(head + body)
        await writer.drain()
    # A silent close: the head promised keep-alive, the connection ends anyway.
    return keep_alive and not fault.close

"""One client connection of the chaos server: each request read, admitted, recorded and answered.

:func:`_serve_connection` reads request heads in a keep-alive loop; each
request is counted as soon as its head is read (the :class:`_Ledger` decides
its fault, and counts its once-only id), recorded once its body has arrived
(and checked, when it declares its length and hash), and answered by
:func:`~httpx_resilience.testing._respond._respond`. A malformed request gets a
400; a client that goes away, or a stop, ends the connection quietly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ..clock import SYSTEM_CLOCK
from ._fault import Fault
from ._http import _BadRequest, _parse_head, _read_body, _simple_response
from ._ledger import _Ledger
from ._records import ONCE_HEADER, RecordedHeaders, RecordedRequest, _check_upload, _wants_check
from ._respond import _respond

__all__ = ["_serve_connection"]

logger = logging.getLogger("httpx_resilience.testing.chaos")  # ChaosServer's own logger


async def _serve_connection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ledger: _Ledger
) -> None:
    """Serve one connection until it ends, then close it; never raises."""
    serial = ledger.open_connection()
    try:
        await _serve_requests(reader, writer, ledger, serial)
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        pass  # the client went away or sent garbage: nothing left to answer
    except _BadRequest as exc:
        with contextlib.suppress(ConnectionError):
            writer.write(_simple_response(400, str(exc)))
    except asyncio.CancelledError:
        # stop() cancelled us. End normally: asyncio's own done-callback for
        # start_server handlers calls task.exception(), which on some 3.11
        # releases logs a spurious error for a cancelled task.
        pass
    except Exception:  # pragma: no cover - a bug in the server itself
        logger.exception("ChaosServer: connection handler failed")
    finally:
        writer.close()


async def _serve_requests(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ledger: _Ledger, serial: int
) -> None:
    while True:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return  # closed between requests: the normal end of keep-alive
        except asyncio.LimitOverrunError:
            writer.write(_simple_response(431, "request head too large"))
            return
        at = SYSTEM_CLOCK.monotonic()
        method, target, version, raw_headers = _parse_head(head)
        headers = RecordedHeaders(raw_headers)
        path, _, query = target.partition("?")
        fault, n = ledger.admit(path, query, target, at)
        once = headers.get(ONCE_HEADER)
        if once is not None:
            ledger.saw_once(once)
        body = await _read_body(reader, writer, headers)
        request = RecordedRequest(method, path, query, headers, body, at, serial)
        ledger.record(request)
        if _wants_check(headers):
            mismatch = _check_upload(request)
            ledger.checked(mismatch)
            if mismatch is not None:  # the finding wins over the programmed fault
                fault = Fault(status=422, body=mismatch.as_dict())
        connection = headers.get("connection", "").lower()
        keep_alive = "close" not in connection and (
            version == "HTTP/1.1" or "keep-alive" in connection
        )
        keep_alive = await _respond(reader, writer, request, fault, n, keep_alive)
        if not keep_alive:
            return

"""The client facades: :class:`AsyncHTTPClient`, :class:`HTTPClient` and the parts they compose.

Where things live::

    _client.py       AsyncHTTPClient: the facade and the request flow
                     (middlewares → build → send → outcome)
    _sync_client.py  HTTPClient: the sync facade (middlewares' sync hooks → build → send)
    _setup.py        the constructor and request arguments both clients share, checked once
    _args.py         the arguments of a request, checked: a typed error naming the argument
    _build.py        RequestBuilder: HTTPRequest → httpx.Request (body, extension, lean build)
    _send.py         Sender: through the pipeline, on the lean path without httpx.AsyncClient;
                     the body read within max_response_bytes
    _sync_send.py    HTTPClient's sending through httpx.Client, the body read within its cap
    _errors.py       failures and outcomes mapped onto the exception tree
"""

from __future__ import annotations

from ._client import AsyncHTTPClient
from ._sync_client import HTTPClient

__all__ = ["AsyncHTTPClient", "HTTPClient"]

"""The client facade: :class:`AsyncHTTPClient` and the parts it composes.

Where things live::

    _client.py   AsyncHTTPClient: the facade and the request flow
                 (middlewares → build → send → outcome)
    _args.py     the arguments of a request, checked: a typed error naming the argument
    _build.py    RequestBuilder: HTTPRequest → httpx.Request (body, extension, lean build)
    _send.py     Sender: through the pipeline, on the lean path without httpx.AsyncClient;
                 the body read within max_response_bytes
    _errors.py   failures and outcomes mapped onto the exception tree
"""

from __future__ import annotations

from ._client import AsyncHTTPClient

__all__ = ["AsyncHTTPClient"]
